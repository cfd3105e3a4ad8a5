"""The service: get-or-create and end chat sessions, in sync and async form (DESIGN §4)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from chatauth import chat_users
from chatauth.chat_users import ChatUserChange
from chatauth.clock import SYSTEM_CLOCK, Clock
from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    StoreUnavailableError,
)
from chatauth.http import Flow, RetryPolicy, arun_flow, default_timeout, run_flow
from chatauth.identity import ChatIdentity, IdentityMapper
from chatauth.journal import EndJournal
from chatauth.providers.base import Provider
from chatauth.session import ChatSession
from chatauth.singleflight import AsyncKeyedLocks, KeyedLocks
from chatauth.stores.base import BaseStore, PendingRevocation
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import ChatToken, SessionKey

__all__ = ["DEFAULT_SESSION_IDLE", "ChatAuth", "RevocationReport", "SweepReport"]

logger = logging.getLogger("chatauth")

TokenIssuedHook = Callable[[ChatSession], None]
SessionEndedHook = Callable[[ChatIdentity, list[ChatToken]], None]


#: Seconds a chat session may go unserved before the sweep ends it: 14 days, the default app
#: session age of Django (``SESSION_COOKIE_AGE``) and of Starlette's ``SessionMiddleware``
#: (``max_age``). Adapters pass their framework's own (Flask: ``PERMANENT_SESSION_LIFETIME``,
#: 31 days by default, for permanent sessions).
DEFAULT_SESSION_IDLE = 14 * 24 * 3600.0

#: The finest granularity at which a cached hit records "served at": one write per token per
#: hour at most keeps the cached path a read (finer when ``session_idle`` is short).
SERVED_GRANULARITY = timedelta(hours=1)


def _seconds(value: float | timedelta) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


@dataclasses.dataclass(frozen=True)
class RevocationReport:
    """What a :meth:`ChatAuth.revoke_pending` run did.

    Attributes:
        revoked: revocations that succeeded (or tokens found already dead/expired).
        failed: revocations that failed again and stay queued.
        remaining: entries still queued after the run.
    """

    revoked: int
    failed: int
    remaining: int


@dataclasses.dataclass(frozen=True)
class SweepReport:
    """What a :meth:`ChatAuth.sweep` run did.

    Attributes:
        swept: tokens taken out of the store (past ``refresh_at``/expiry, or idle).
        revoked: of those, revoked at the provider during the run.
        queued: revocations that failed and were queued for :meth:`ChatAuth.revoke_pending`.
        journaled: journaled ends finished (:meth:`ChatAuth.end_session_durably`).
    """

    swept: int
    revoked: int
    queued: int
    journaled: int = 0


class ChatAuth:
    """Gets, reuses and ends chat sessions for app users.

    One instance serves a whole app (all threads, or one event loop). It is framework-neutral:
    integrations pass the app user and an app session id; nothing here sees a request.

    Args:
        provider: the chat provider backend (:class:`~chatauth.providers.base.Provider`).
        store: where tokens, issue locks and pending revocations live; default a
            :class:`~chatauth.stores.memory.MemoryStore` (one process only).
        mapper: app user -> :class:`~chatauth.identity.ChatIdentity`; default
            :class:`~chatauth.identity.IdentityMapper` (``"user-<pk>"``).
        token_ttl: token lifetime, seconds or ``timedelta`` (default 1 hour). Each provider
            converts it to its own units and caps; tokens that never expire at the provider
            are still re-issued after it.
        refresh_margin: a stored token is reused while it stays valid for longer than this
            (seconds or ``timedelta``, default 5 minutes).
        session_idle: seconds (or ``timedelta``) after which a chat session that was not
            served counts as abandoned and :meth:`sweep` ends it; default
            :data:`DEFAULT_SESSION_IDLE` (14 days). Give it your app's session age.
        timeout: seconds per HTTP phase for chatauth's own httpx clients.
        retry: :class:`~chatauth.http.RetryPolicy` for provider calls.
        transport: an httpx transport for both clients (tests: ``httpx.MockTransport``,
            ``httpx.ASGITransport``). Ignored for a client you pass yourself.
        http_client, async_http_client: your own clients to reuse (not closed by chatauth).
        clock: the :class:`~chatauth.clock.Clock` every time decision of the service reads
            (is a stored token still usable past ``refresh_margin``, has a queued token
            expired anyway). Default: the store's own clock, so that the service and its
            store share one time (the system clock unless the store was given another). The
            default :class:`~chatauth.stores.memory.MemoryStore` is built with this clock.
            When you pass both a store and a clock, give the store the same clock: the
            store decides lock expiry by its clock, the service token freshness by this one.
        journal: an :class:`~chatauth.journal.EndJournal` where
            :meth:`end_session_durably` keeps the ends it could not write to the store;
            :meth:`sweep` replays it. Default none (then a store failure is raised).

    Hooks: append callables to :attr:`on_token_issued` (``(ChatSession) -> None``),
    :attr:`on_session_ended` (``(ChatIdentity, list[ChatToken]) -> None``) and
    :attr:`on_chat_user_changed` (``(ChatUserChange) -> None``). A hook that raises is logged
    and does not fail the request.
    """

    def __init__(
        self,
        provider: Provider,
        store: BaseStore | None = None,
        *,
        mapper: Callable[[Any], ChatIdentity] | None = None,
        token_ttl: float | timedelta = 3600,
        refresh_margin: float | timedelta = 300,
        session_idle: float | timedelta = DEFAULT_SESSION_IDLE,
        timeout: float = 5.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        journal: EndJournal | None = None,
    ) -> None:
        self.provider = provider
        self.journal = journal
        self.store = store if store is not None else MemoryStore(clock=clock)
        # A store that predates the clock (a subclass whose __init__ skips BaseStore's) has
        # none of its own: it then reads the system clock, and so does the service.
        self.clock: Clock = (
            clock if clock is not None else getattr(self.store, "clock", SYSTEM_CLOCK)
        )
        self.mapper = mapper or IdentityMapper()
        self.token_ttl = _seconds(token_ttl)
        self.refresh_margin = _seconds(refresh_margin)
        if self.refresh_margin >= self.token_ttl:
            raise ConfigurationError(
                "refresh_margin must be shorter than token_ttl.", setting="REFRESH_MARGIN"
            )
        self.session_idle = _seconds(session_idle)
        if self.session_idle <= timedelta(0):
            raise ConfigurationError("session_idle must be positive.", setting="SESSION_IDLE")
        self.served_granularity = min(SERVED_GRANULARITY, self.session_idle / 24)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._transport = transport
        self._client = http_client
        self._client_guard = threading.Lock()
        self._owns_client = http_client is None
        self._given_async_client = async_http_client
        self._async_clients: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncClient
        ] = weakref.WeakKeyDictionary()
        self._locks = KeyedLocks()
        self._alocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncKeyedLocks] = (
            weakref.WeakKeyDictionary()
        )
        self.on_token_issued: list[TokenIssuedHook] = []
        self.on_session_ended: list[SessionEndedHook] = []
        #: ``(ChatUserChange) -> None`` hooks, called after each chat-user operation
        #: (:mod:`chatauth.chat_users`), done or queued.
        self.on_chat_user_changed: list[Callable[[ChatUserChange], None]] = []
        # The issue lock must outlive everything done while holding it, or a second worker
        # would issue a duplicate: the issue operation and the revocation of the token it
        # replaces. Each is bounded by the drivers' deadline (retry.timeout) plus the budget
        # of a failed flow's undo requests (retry.cleanup_timeout); the sync driver may
        # overrun each of those two by one read in flight (at most one phase timeout).
        # 10 s more for the store. Defaults: 2 * (15 + 5 + 2 * 5) + 10 = 70 s.
        self.lock_ttl = (
            2 * (self.retry.timeout + self.retry.cleanup_timeout + 2 * self.timeout) + 10.0
        )

    def __repr__(self) -> str:
        return f"<ChatAuth provider={self.provider.name!r} store={self.store!r}>"

    # -- plumbing ----------------------------------------------------------------------------
    @property
    def http_client(self) -> httpx.Client:
        """The sync httpx client (created on first use, connection pooling on)."""
        if self._client is None:
            # Request threads race here on the first requests of a threaded server.
            with self._client_guard:
                if self._client is None:
                    transport = (
                        self._transport
                        if isinstance(self._transport, httpx.BaseTransport)
                        else None
                    )
                    self._client = httpx.Client(
                        timeout=default_timeout(self.timeout), transport=transport
                    )
        return self._client

    def _async_client(self) -> httpx.AsyncClient:
        if self._given_async_client is not None:
            return self._given_async_client
        # A pool's connections belong to the event loop that opened them: one client per loop.
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            transport = (
                self._transport if isinstance(self._transport, httpx.AsyncBaseTransport) else None
            )
            client = httpx.AsyncClient(timeout=default_timeout(self.timeout), transport=transport)
            self._async_clients[loop] = client
        return client

    def _async_locks(self) -> AsyncKeyedLocks:
        loop = asyncio.get_running_loop()
        locks = self._alocks.get(loop)
        if locks is None:
            locks = self._alocks[loop] = AsyncKeyedLocks()
        return locks

    def _run(self, flow: Flow[Any]) -> Any:
        return run_flow(flow, self.http_client, provider=self.provider.name, policy=self.retry)

    async def _arun(self, flow: Flow[Any]) -> Any:
        return await arun_flow(
            flow, self._async_client(), provider=self.provider.name, policy=self.retry
        )

    def close(self) -> None:
        """Close the httpx clients chatauth created and the store's connections."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
        self.store.close()

    async def aclose(self) -> None:
        """Async twin of :meth:`close` (also closes this loop's async client)."""
        client = self._async_clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
        await self.store.aclose()

    # -- identity ----------------------------------------------------------------------------
    def identity_for(self, user: Any) -> ChatIdentity:
        """Map an app user to a chat identity valid for this provider.

        Raises:
            NotAuthenticatedError: ``user`` is ``None`` or not authenticated.
            InvalidUIDError: the mapped UID breaks the provider's UID rules.
        """
        if isinstance(user, ChatIdentity):
            identity = user
        else:
            if user is None or getattr(user, "is_authenticated", True) is False:
                raise NotAuthenticatedError()
            identity = self.mapper(user)
        self.provider.uid_rules.validate(identity.uid, self.provider.name)
        return identity

    def _key(self, identity: ChatIdentity, app_session: str | None) -> SessionKey:
        return SessionKey(self.provider.name, identity.uid, app_session)

    def _fresh(self, token: ChatToken | None) -> ChatToken | None:
        if token is None or not token.is_fresh(self.refresh_margin, now=self.clock.now()):
            return None
        return token

    def _finish(self, token: ChatToken) -> ChatToken:
        # No token lives longer than token_ttl in our hands, whatever the provider allows.
        return dataclasses.replace(token, refresh_at=token.issued_at + self.token_ttl)

    def _serve_due(self, token: ChatToken) -> datetime | None:
        """Now, if the token's recorded "served at" is older than the granularity."""
        now = self.clock.now()
        if token.served_at is not None and now - token.served_at < self.served_granularity:
            return None
        return now

    def _served(self, key: SessionKey, token: ChatToken) -> None:
        now = self._serve_due(token)
        if now is not None:
            try:
                self.store.touch(key, now)
            except StoreUnavailableError as exc:
                # The token was read a moment ago: serve it; the next hit records the time.
                logger.warning("chatauth could not record a served time (%s)", exc.code)

    async def _aserved(self, key: SessionKey, token: ChatToken) -> None:
        now = self._serve_due(token)
        if now is not None:
            try:
                await self.store.atouch(key, now)
            except StoreUnavailableError as exc:
                logger.warning("chatauth could not record a served time (%s)", exc.code)

    def _session(self, identity: ChatIdentity, token: ChatToken) -> ChatSession:
        client = {**self.provider.client_config(), **token.client_data()}
        return ChatSession(identity=identity, token=token, client=client)

    def _issued(self, session: ChatSession) -> None:
        for hook in self.on_token_issued:
            try:
                hook(session)
            except Exception:
                logger.exception("chatauth on_token_issued hook failed")

    def _ended(self, identity: ChatIdentity, tokens: list[ChatToken]) -> None:
        for hook in self.on_session_ended:
            try:
                hook(identity, tokens)
            except Exception:
                logger.exception("chatauth on_session_ended hook failed")

    # -- get_session ---------------------------------------------------------------------
    def get_session(self, user: Any, app_session: str | None = None) -> ChatSession:
        """The chat session of ``user`` for one app session, issuing a token if needed.

        A stored token is reused while valid for longer than ``refresh_margin``; otherwise one
        caller per key (in this process, and across processes through the store's lock)
        issues a new one while the others wait for it.

        Args:
            user: the app user (any object the mapper understands), or a ``ChatIdentity``.
            app_session: the app's session id; ``None`` for one token per user.

        Raises:
            NotAuthenticatedError, InvalidUIDError, ProviderError, ProviderUnavailableError,
            StoreUnavailableError.
        """
        identity = self.identity_for(user)
        key = self._key(identity, app_session)
        token = self._fresh(self.store.get(key))
        if token is not None:
            self._served(key, token)
            return self._session(identity, token)
        # The callers of one key share the leader's answer (singleflight.KeyedLocks.share).
        return self._locks.share(key.digest, lambda: self._get_or_issue(identity, key))

    def _get_or_issue(self, identity: ChatIdentity, key: SessionKey) -> ChatSession:
        token = self._fresh(self.store.get(key))
        if token is None:
            with self.store.lock(key, ttl=self.lock_ttl, wait=self.lock_ttl + 5):
                stale = self.store.get(key)
                token = self._fresh(stale)
                if token is None:
                    token = self._issue(identity, key, stale)
                    session = self._session(identity, token)
                    self._issued(session)
                    return session
        return self._session(identity, token)

    def _issue(self, identity: ChatIdentity, key: SessionKey, stale: ChatToken | None) -> ChatToken:
        try:
            token = self._finish(self._run(self.provider.issue(identity, self.token_ttl)))
        except ChatAuthError as exc:
            # Tokens the failed flow minted and could not revoke itself: queue them.
            for orphan in exc.unrevoked:
                with contextlib.suppress(StoreUnavailableError):
                    self._queue(orphan, exc)
            raise
        try:
            self.store.set(key, token)
        except StoreUnavailableError:
            # Nobody will ever be handed this token, and the store cannot queue its
            # revocation: revoke it now rather than leave it alive at the provider.
            if self.provider.revocation == "token":
                with contextlib.suppress(ChatAuthError):
                    self._run(self.provider.revoke(token))
            raise
        logger.info("chatauth issued a %s token for uid %s", self.provider.name, identity.uid)
        if stale is not None and self.provider.revocation == "token":
            self._revoke_or_queue(stale)
        return token

    async def aget_session(self, user: Any, app_session: str | None = None) -> ChatSession:
        """Async twin of :meth:`get_session`; never blocks the event loop."""
        identity = self.identity_for(user)
        key = self._key(identity, app_session)
        token = self._fresh(await self.store.aget(key))
        if token is not None:
            await self._aserved(key, token)
            return self._session(identity, token)
        return await self._async_locks().share(
            key.digest, lambda: self._aget_or_issue(identity, key)
        )

    async def _aget_or_issue(self, identity: ChatIdentity, key: SessionKey) -> ChatSession:
        token = self._fresh(await self.store.aget(key))
        if token is None:
            async with self.store.alock(key, ttl=self.lock_ttl, wait=self.lock_ttl + 5):
                stale = await self.store.aget(key)
                token = self._fresh(stale)
                if token is None:
                    token = await self._aissue(identity, key, stale)
                    session = self._session(identity, token)
                    self._issued(session)
                    return session
        return self._session(identity, token)

    async def _aissue(
        self, identity: ChatIdentity, key: SessionKey, stale: ChatToken | None
    ) -> ChatToken:
        try:
            token = self._finish(await self._arun(self.provider.issue(identity, self.token_ttl)))
        except ChatAuthError as exc:
            for orphan in exc.unrevoked:  # see _issue
                with contextlib.suppress(StoreUnavailableError):
                    await self.store.aadd_pending(orphan, exc.code)
                    self._log_queued(orphan, exc)
            raise
        try:
            await self.store.aset(key, token)
        except StoreUnavailableError:
            if self.provider.revocation == "token":  # see _issue
                with contextlib.suppress(ChatAuthError):
                    await self._arun(self.provider.revoke(token))
            raise
        logger.info("chatauth issued a %s token for uid %s", self.provider.name, identity.uid)
        if stale is not None and self.provider.revocation == "token":
            await self._arevoke_or_queue(stale)
        return token

    # -- end_session ---------------------------------------------------------------------
    def _to_revoke(self, popped: list[ChatToken]) -> list[ChatToken]:
        if self.provider.revocation == "none":
            return []
        if self.provider.revocation == "user":
            # One call kills every token of the user; the newest token authenticates it.
            return sorted(popped, key=lambda t: t.issued_at)[-1:]
        return popped

    def end_session(self, user: Any, app_session: str | None = None) -> list[ChatToken]:
        """End the chat session of ``user`` for one app session: forget and revoke its token.

        For providers whose revocation is user-wide (``revocation == "user"``) every stored
        token of the UID is dropped, so the user's other devices get a fresh token next time
        instead of a dead one. A revocation that fails (provider down) is queued in the store
        and retried by :meth:`revoke_pending`: no token outlives the app session silently.

        Returns:
            the tokens that were dropped (empty if there was no chat session).

        Raises:
            NotAuthenticatedError, InvalidUIDError, StoreUnavailableError. Provider failures
            are not raised: the revocation is queued instead.
        """
        identity = self.identity_for(user)
        return self._end(identity, self._key(identity, app_session))

    def _end(self, identity: ChatIdentity, key: SessionKey) -> list[ChatToken]:
        with (
            self._locks.hold(key.digest),
            self.store.lock(key, ttl=self.lock_ttl, wait=self.lock_ttl + 5),
        ):
            if self.provider.revocation == "user":
                popped = self.store.pop_user(self.provider.name, identity.uid)
            else:
                token = self.store.pop(key)
                popped = [token] if token else []
        for token in self._to_revoke(popped):
            self._revoke_or_queue(token)
        if popped:
            self._ended(identity, popped)
        return popped

    async def aend_session(self, user: Any, app_session: str | None = None) -> list[ChatToken]:
        """Async twin of :meth:`end_session`."""
        identity = self.identity_for(user)
        return await self._aend(identity, self._key(identity, app_session))

    async def _aend(self, identity: ChatIdentity, key: SessionKey) -> list[ChatToken]:
        async with (
            self._async_locks().hold(key.digest),
            self.store.alock(key, ttl=self.lock_ttl, wait=self.lock_ttl + 5),
        ):
            if self.provider.revocation == "user":
                popped = await self.store.apop_user(self.provider.name, identity.uid)
            else:
                token = await self.store.apop(key)
                popped = [token] if token else []
        for token in self._to_revoke(popped):
            await self._arevoke_or_queue(token)
        if popped:
            self._ended(identity, popped)
        return popped

    def end_session_durably(self, user: Any, app_session: str | None = None) -> list[ChatToken]:
        """:meth:`end_session` for logout views, which must never fail because of chat.

        If the store cannot be reached, the end is appended to :attr:`journal` (durably, on
        this machine) and finished by the next :meth:`sweep` once the store answers: the
        token is then taken out of the store and revoked. Logout then proceeds as usual.

        Returns:
            the tokens dropped now; empty when there was no chat session or the end was
            journaled.

        Raises:
            NotAuthenticatedError, InvalidUIDError: as :meth:`end_session`.
            StoreUnavailableError: only without a journal (``journal=None``).
            OSError: the store was down and the journal could not be written either.
        """
        identity = self.identity_for(user)
        key = self._key(identity, app_session)
        try:
            return self._end(identity, key)
        except StoreUnavailableError as exc:
            if self.journal is None:
                raise
            self.journal.record(key, now=self.clock.now())
            self._log_journaled(identity, exc)
            return []

    async def aend_session_durably(
        self, user: Any, app_session: str | None = None
    ) -> list[ChatToken]:
        """Async twin of :meth:`end_session_durably` (the journal write, a small file append
        with ``fsync``, runs in a worker thread)."""
        identity = self.identity_for(user)
        key = self._key(identity, app_session)
        try:
            return await self._aend(identity, key)
        except StoreUnavailableError as exc:
            if self.journal is None:
                raise
            await asyncio.to_thread(self.journal.record, key, now=self.clock.now())
            self._log_journaled(identity, exc)
            return []

    def _log_journaled(self, identity: ChatIdentity, exc: ChatAuthError) -> None:
        logger.warning(
            "chatauth could not end a %s session of uid %s (%s); journaled for the sweep",
            self.provider.name,
            identity.uid,
            exc.code,
        )

    def replay_journal(self) -> tuple[int, int]:
        """End the sessions :meth:`end_session_durably` journaled while the store was down
        (:meth:`sweep` runs it first). Stops at the first store failure, keeping the rest.

        Returns:
            ``(ended, remaining)``; ``(0, 0)`` without a journal.

        Raises:
            StoreUnavailableError: the store is still down (the entries stay journaled).
        """
        if self.journal is None:
            return 0, 0

        def end(key: SessionKey) -> bool:
            if key.provider == self.provider.name:
                self._end(ChatIdentity(key.uid), key)
            # else another provider's entry (the PROVIDER setting changed): nothing to end
            return True

        return self.journal.replay(end)

    def end_all_sessions(self, user: Any) -> list[ChatToken]:
        """End every chat session of ``user`` (all app sessions): password change, admin
        action, ``end-sessions`` commands. Returns the dropped tokens."""
        identity = self.identity_for(user)
        popped = self.store.pop_user(self.provider.name, identity.uid)
        for token in self._to_revoke(popped):
            self._revoke_or_queue(token)
        if popped:
            self._ended(identity, popped)
        return popped

    async def aend_all_sessions(self, user: Any) -> list[ChatToken]:
        """Async twin of :meth:`end_all_sessions`."""
        identity = self.identity_for(user)
        popped = await self.store.apop_user(self.provider.name, identity.uid)
        for token in self._to_revoke(popped):
            await self._arevoke_or_queue(token)
        if popped:
            self._ended(identity, popped)
        return popped

    def end_tokens(self, tokens: list[ChatToken]) -> int:
        """End chat sessions whose tokens were already taken out of the store by other means
        (an admin action, a sweep of expired app sessions): revoke them as
        :meth:`end_session` does and fire :attr:`on_session_ended` once per UID.

        For user-wide revocation the UID's other stored tokens are dropped too.

        Returns:
            how many revocations failed and were queued for :meth:`revoke_pending`.
        """
        by_uid: dict[str, list[ChatToken]] = {}
        for token in tokens:
            by_uid.setdefault(token.uid, []).append(token)
        queued = 0
        for uid, mine in by_uid.items():
            if self.provider.revocation == "user":
                mine += self.store.pop_user(self.provider.name, uid)
            queued += sum(not self._revoke_or_queue(t) for t in self._to_revoke(mine))
            self._ended(ChatIdentity(uid), mine)
        return queued

    # -- revocation --------------------------------------------------------------------------
    def _revoke_or_queue(self, token: ChatToken) -> bool:
        try:
            self._run(self.provider.revoke(token))
        except (ProviderUnavailableError, ProviderError) as exc:
            self._queue(token, exc)
            return False
        return True

    async def _arevoke_or_queue(self, token: ChatToken) -> bool:
        try:
            await self._arun(self.provider.revoke(token))
        except (ProviderUnavailableError, ProviderError) as exc:
            await self.store.aadd_pending(token, exc.code)
            self._log_queued(token, exc)
            return False
        return True

    def _queue(self, token: ChatToken, exc: ChatAuthError) -> None:
        self.store.add_pending(token, exc.code)
        self._log_queued(token, exc)

    def _log_queued(self, token: ChatToken, exc: ChatAuthError) -> None:
        logger.warning(
            "chatauth could not revoke a %s token of uid %s (%s); queued for revoke-pending",
            token.provider,
            token.uid,
            exc.code,
        )

    def _settle(self, entry: PendingRevocation) -> bool | None:
        """True if the entry needs no more work, None if it must be attempted."""
        if chat_users.is_queued_operation(entry.token):
            return None  # a queued chat-user operation, whatever the revocation scope
        if entry.token.is_expired(now=self.clock.now()) or self.provider.revocation == "none":
            return True
        return None

    def _pending_flow(self, token: ChatToken) -> Flow[Any]:
        """What finishes a pending entry: its revocation, or a queued chat-user operation."""
        if chat_users.is_queued_operation(token):
            return chat_users.replay_flow(self, token)
        return self.provider.revoke(token)

    def revoke_pending(self, limit: int = 100) -> RevocationReport:
        """Retry queued revocations (up to ``limit``). Expired tokens are dropped as done;
        failures stay queued with their attempt count. Nothing is dropped silently.

        Queued chat-user operations (:mod:`chatauth.chat_users`: an update, deactivation or
        erasure the provider was down for) share the queue and are finished here too; they
        count as ``revoked``/``failed`` like revocations."""
        revoked = failed = 0
        for entry in self.store.pending(limit):
            if self._settle(entry) is None:
                try:
                    self._run(self._pending_flow(entry.token))
                except (ProviderUnavailableError, ProviderError) as exc:
                    self.store.retry_failed(entry, exc.code)
                    failed += 1
                    continue
            self.store.remove_pending(entry)
            revoked += 1
        remaining = self.store.count_pending()
        logger.info(
            "chatauth revoke-pending: %d revoked, %d failed, %d remaining",
            revoked,
            failed,
            remaining,
        )
        return RevocationReport(revoked=revoked, failed=failed, remaining=remaining)

    async def arevoke_pending(self, limit: int = 100) -> RevocationReport:
        """Async twin of :meth:`revoke_pending`."""
        revoked = failed = 0
        for entry in await self.store.apending(limit):
            if self._settle(entry) is None:
                try:
                    await self._arun(self._pending_flow(entry.token))
                except (ProviderUnavailableError, ProviderError) as exc:
                    await self.store.aretry_failed(entry, exc.code)
                    failed += 1
                    continue
            await self.store.aremove_pending(entry)
            revoked += 1
        remaining = await self.store.acount_pending()
        logger.info(
            "chatauth revoke-pending: %d revoked, %d failed, %d remaining",
            revoked,
            failed,
            remaining,
        )
        return RevocationReport(revoked=revoked, failed=failed, remaining=remaining)

    # -- the sweep -----------------------------------------------------------------------
    def _sweep_args(
        self, idle: float | timedelta | None, now: datetime | None
    ) -> tuple[datetime, datetime]:
        now = now or self.clock.now()
        return now, now - (self.session_idle if idle is None else _seconds(idle))

    def _sweep_targets(self, swept: list[ChatToken], now: datetime) -> list[ChatToken]:
        """Which swept tokens to revoke: none for providers without revocation, nor tokens
        already expired (dead anyway); for user-wide revocation one per UID, and only when
        the UID has no other stored session (revoking would end those too: their tokens
        keep the user's credential in use, and expire or are swept in turn)."""
        if self.provider.revocation == "none":
            return []
        alive = [t for t in swept if not t.is_expired(now=now)]
        if self.provider.revocation == "token":
            return alive
        targets = []
        for uid in dict.fromkeys(t.uid for t in alive):
            if not self.store.sessions(self.provider.name, uid):
                targets += self._to_revoke([t for t in alive if t.uid == uid])
        return targets

    def sweep(
        self,
        idle: float | timedelta | None = None,
        *,
        now: datetime | None = None,
        limit: int = 1000,
    ) -> SweepReport:
        """End the chat sessions nobody will be served again, so no token outlives its app
        session at the provider (DESIGN §8).

        Takes out of the store every token of this provider that is past its ``refresh_at``
        (or expiry), or was last served more than ``idle`` ago (its app session expired or was
        abandoned: cookie lost, browser closed), and revokes it, queueing the revocations
        that fail for :meth:`revoke_pending`. :attr:`on_session_ended` fires once per UID.
        Run it periodically (``chatauth sweep``, cron or ``--loop``).

        Args:
            idle: seconds or ``timedelta``; default :attr:`session_idle`.
            now: aware UTC datetime the decision is made at; default the service clock's.
            limit: most tokens taken out per run.

        Raises:
            StoreUnavailableError: the store could not be reached (nothing was taken out, or
                what was taken out is revoked or queued before the error is raised).
        """
        journaled = self.replay_journal()[0]
        now, idle_before = self._sweep_args(idle, now)
        swept = self.store.sweep(self.provider.name, now=now, idle_before=idle_before, limit=limit)
        revoked = queued = 0
        for token in self._sweep_targets(swept, now):
            if self._revoke_or_queue(token):
                revoked += 1
            else:
                queued += 1
        for uid in dict.fromkeys(t.uid for t in swept):
            self._ended(ChatIdentity(uid), [t for t in swept if t.uid == uid])
        return self._swept(swept, revoked, queued, journaled)

    async def asweep(
        self,
        idle: float | timedelta | None = None,
        *,
        now: datetime | None = None,
        limit: int = 1000,
    ) -> SweepReport:
        """Async twin of :meth:`sweep`."""
        journaled = (await asyncio.to_thread(self.replay_journal))[0]
        now, idle_before = self._sweep_args(idle, now)
        swept = await self.store.asweep(
            self.provider.name, now=now, idle_before=idle_before, limit=limit
        )
        if self.provider.revocation == "user":
            targets = await asyncio.to_thread(self._sweep_targets, swept, now)
        else:
            targets = self._sweep_targets(swept, now)
        revoked = queued = 0
        for token in targets:
            if await self._arevoke_or_queue(token):
                revoked += 1
            else:
                queued += 1
        for uid in dict.fromkeys(t.uid for t in swept):
            self._ended(ChatIdentity(uid), [t for t in swept if t.uid == uid])
        return self._swept(swept, revoked, queued, journaled)

    def _swept(
        self, swept: list[ChatToken], revoked: int, queued: int, journaled: int
    ) -> SweepReport:
        logger.info(
            "chatauth sweep: %d swept, %d revoked, %d queued, %d journaled ends replayed",
            len(swept),
            revoked,
            queued,
            journaled,
        )
        return SweepReport(swept=len(swept), revoked=revoked, queued=queued, journaled=journaled)

    # -- diagnostics ---------------------------------------------------------------------
    def check(self) -> dict[str, str]:
        """Reach the provider with the configured secret and report what works.

        Raises:
            ProviderError: the provider refused the credentials.
            ProviderUnavailableError: it could not be reached.
        """
        result: dict[str, str] = self._run(self.provider.check())
        return result

    # -- the chat user follows the app user (chatauth.chat_users) ---------------------------
    def update_chat_user(self, user: Any) -> ChatUserChange:
        """Push ``user``'s mapped display name and avatar to the provider's chat profile.

        Named ``update_chat_user`` rather than ``sync_user``: in this API ``a``-prefixed
        names are the async twins, and ``sync``/``async`` would read as that distinction.

        Returns:
            a :class:`~chatauth.chat_users.ChatUserChange`; ``done`` is ``False`` when the
            provider failed and the update was queued for ``revoke-pending``/``sweep``.

        Raises:
            UnsupportedOperationError: the provider keeps no profile chatauth can write.
            NotAuthenticatedError, InvalidUIDError: as :meth:`identity_for`.
            StoreUnavailableError: the store is down.
        """
        return chat_users.change(self, "update", user)

    async def aupdate_chat_user(self, user: Any) -> ChatUserChange:
        """Async twin of :meth:`update_chat_user`."""
        return await chat_users.achange(self, "update", user)

    def deactivate_chat_user(self, user: Any) -> ChatUserChange:
        """End every chat session of ``user`` (as :meth:`end_all_sessions`), then deactivate
        the chat user at the provider with its documented call (docs/providers.md).

        Raises:
            UnsupportedOperationError: the provider has no deactivate call (raised before any
                session is ended).
            NotAuthenticatedError, InvalidUIDError, StoreUnavailableError: as
                :meth:`update_chat_user`.
        """
        return chat_users.change(self, "deactivate", user)

    async def adeactivate_chat_user(self, user: Any) -> ChatUserChange:
        """Async twin of :meth:`deactivate_chat_user`."""
        return await chat_users.achange(self, "deactivate", user)

    def erase_chat_user(self, user: Any) -> ChatUserChange:
        """End every chat session of ``user``, then delete the chat user and its profile at
        the provider for good (GDPR erasure), with its documented call.

        Raises:
            UnsupportedOperationError: the provider has no delete call (raised before any
                session is ended).
            NotAuthenticatedError, InvalidUIDError, StoreUnavailableError: as
                :meth:`update_chat_user`.
        """
        return chat_users.change(self, "erase", user)

    async def aerase_chat_user(self, user: Any) -> ChatUserChange:
        """Async twin of :meth:`erase_chat_user`."""
        return await chat_users.achange(self, "erase", user)
