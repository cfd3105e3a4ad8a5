"""The service: get-or-create and end chat sessions, in sync and async form (DESIGN §4).

Each operation is written once, as a generator of effects (:mod:`chatauth.effects`): the
public methods hand it to the sync driver (``get_session``) or to the async one
(``aget_session``). The periodic upkeep (sweep, pending revocations, the end journal) lives
in :mod:`chatauth.upkeep`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx

from chatauth import chat_users, upkeep
from chatauth.chat_users import ChatUserChange
from chatauth.clock import SYSTEM_CLOCK, Clock
from chatauth.effects import Blocking, Locked, Op, ProviderCall, Shared, StoreCall, adrive, drive
from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    StoreUnavailableError,
)
from chatauth.hits import DEFAULT_LOCAL_CACHE, HitCache
from chatauth.http import Flow, RetryPolicy, arun_flow, default_timeout, run_flow
from chatauth.identity import ChatIdentity, IdentityMapper
from chatauth.journal import EndJournal
from chatauth.providers.base import Provider
from chatauth.session import ChatSession
from chatauth.singleflight import AsyncKeyedLocks, KeyedLocks
from chatauth.stores.base import BaseStore
from chatauth.stores.memory import MemoryStore
from chatauth.tokens import ChatToken, SessionKey
from chatauth.upkeep import DEFAULT_SESSION_IDLE, RevocationReport, SweepReport, seconds

__all__ = ["DEFAULT_SESSION_IDLE", "ChatAuth", "RevocationReport", "SweepReport"]

logger = logging.getLogger("chatauth")

TokenIssuedHook = Callable[[ChatSession], None]
SessionEndedHook = Callable[[ChatIdentity, list[ChatToken]], None]

#: The finest granularity at which a cached hit records "served at": one write per token per
#: hour at most keeps the cached path a read (finer when ``session_idle`` is short).
SERVED_GRANULARITY = timedelta(hours=1)


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
            :meth:`end_session_durably` keeps the ends it could not write to the store, and
            every operation the revocations it could neither do nor queue (store down);
            :meth:`sweep` replays it. Default none (then a store failure is raised).
        local_cache: seconds (or ``timedelta``) a chat session this process served is kept
            in its memory, so that reading it again costs no store call (default 5; ``0``
            turns it off). A logout in another process reaches this one within that time;
            see :mod:`chatauth.hits` for why that is safe.

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
        local_cache: float | timedelta = DEFAULT_LOCAL_CACHE,
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
        self.token_ttl = seconds(token_ttl)
        self.refresh_margin = seconds(refresh_margin)
        if self.refresh_margin >= self.token_ttl:
            raise ConfigurationError(
                "refresh_margin must be shorter than token_ttl.", setting="REFRESH_MARGIN"
            )
        self.session_idle = seconds(session_idle)
        if self.session_idle <= timedelta(0):
            raise ConfigurationError("session_idle must be positive.", setting="SESSION_IDLE")
        self.served_granularity = min(SERVED_GRANULARITY, self.session_idle / 24)
        cache = seconds(local_cache)
        if cache < timedelta(0):
            raise ConfigurationError("local_cache must not be negative.", setting="LOCAL_CACHE")
        self._hits = HitCache(cache.total_seconds())
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
        """Drive one provider flow with the sync client (retries, deadline: chatauth.http)."""
        return run_flow(flow, self.http_client, provider=self.provider.name, policy=self.retry)

    async def _arun(self, flow: Flow[Any]) -> Any:
        """Async twin of :meth:`_run`."""
        return await arun_flow(
            flow, self._async_client(), provider=self.provider.name, policy=self.retry
        )

    def _drive(self, op: Op[Any]) -> Any:
        """Run one of the operations below with blocking calls (:func:`chatauth.effects.drive`)."""
        return drive(op, self)

    async def _adrive(self, op: Op[Any]) -> Any:
        """Run the same operation on the event loop (:func:`chatauth.effects.adrive`)."""
        return await adrive(op, self)

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
        identity = self._mapped(user)
        self.provider.uid_rules.validate(identity.uid, self.provider.name)
        return identity

    def _mapped(self, user: Any) -> ChatIdentity:
        """:meth:`identity_for` without the provider's UID rules."""
        if isinstance(user, ChatIdentity):
            return user
        if user is None or getattr(user, "is_authenticated", True) is False:
            raise NotAuthenticatedError()
        return self.mapper(user)

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
        return self._session_of(self.identity_for(user), app_session)

    async def aget_session(self, user: Any, app_session: str | None = None) -> ChatSession:
        """Async twin of :meth:`get_session`; never blocks the event loop."""
        return await self._asession_of(self.identity_for(user), app_session)

    def _cached(self, identity: ChatIdentity, app_session: str | None) -> ChatSession | None:
        """The session of ``identity`` in ``app_session`` if this process served it a moment
        ago and may serve it again (:mod:`chatauth.hits`). ``identity`` may come from
        :meth:`_mapped`: a kept session's identity, which it must equal, passed
        :meth:`identity_for` when it was served."""
        return self._hits.get(identity, app_session, self.clock.monotonic())

    def _session_of(self, identity: ChatIdentity, app_session: str | None) -> ChatSession:
        """:meth:`get_session` for an ``identity`` that has passed :meth:`identity_for` (the
        request path of :mod:`chatauth.binding` maps and checks the user once)."""
        hit = self._cached(identity, app_session)
        if hit is not None:
            return hit
        session: ChatSession = self._drive(self._get_session(identity, app_session))
        return session

    async def _asession_of(self, identity: ChatIdentity, app_session: str | None) -> ChatSession:
        """Async twin of :meth:`_session_of`."""
        hit = self._cached(identity, app_session)
        if hit is not None:
            return hit
        session: ChatSession = await self._adrive(self._get_session(identity, app_session))
        return session

    def _get_session(self, identity: ChatIdentity, app_session: str | None) -> Op[ChatSession]:
        """``identity`` has passed :meth:`identity_for`."""
        key = self._key(identity, app_session)
        generation = self._hits.generation
        token = self._fresh((yield StoreCall("get", key)))
        if token is not None:
            served = yield from self._served(key, token)
            session = self._session(identity, token)
            self._keep(key, session, served, generation)
            return session
        # The callers of one key share the leader's answer (singleflight.KeyedLocks.share).
        issued: ChatSession = yield Shared(key, lambda: self._get_or_issue(identity, key))
        return issued

    def _served(self, key: SessionKey, token: ChatToken) -> Op[datetime | None]:
        """Record the serving if due; return when the store last recorded one (``None``: it
        could not record it now)."""
        now = self._serve_due(token)
        if now is None:
            return token.served_at
        try:
            yield StoreCall("touch", key, now)
        except StoreUnavailableError as exc:
            # The token was read a moment ago: serve it; the next hit records the time.
            logger.warning("chatauth could not record a served time (%s)", exc.code)
            return None
        return now

    def _keep(
        self, key: SessionKey, session: ChatSession, served: datetime | None, generation: int
    ) -> None:
        """Keep ``session`` in this process until it is due for anything but serving again:
        the token's freshness ends, or the next "served at" record (:mod:`chatauth.hits`)."""
        hits = self._hits
        if hits.seconds <= 0 or served is None:
            return
        now = self.clock.now()
        left = min(hits.seconds, (served + self.served_granularity - now).total_seconds())
        until = session.token.usable_until()
        if until is not None:
            left = min(left, (until - self.refresh_margin - now).total_seconds())
        if left > 0:
            hits.put(key, session, self.clock.monotonic() + left, generation)

    def _get_or_issue(self, identity: ChatIdentity, key: SessionKey) -> Op[ChatSession]:
        token = self._fresh((yield StoreCall("get", key)))
        if token is not None:
            return self._session(identity, token)
        session: ChatSession = yield Locked(key, self._issue_locked(identity, key))
        return session

    def _issue_locked(self, identity: ChatIdentity, key: SessionKey) -> Op[ChatSession]:
        """Under the store's issue lock: another worker may have issued meanwhile."""
        stale = yield StoreCall("get", key)
        token = self._fresh(stale)
        if token is not None:
            return self._session(identity, token)
        token = yield from self._issue(identity, key, stale)
        session = self._session(identity, token)
        self._issued(session)
        return session

    def _issue(
        self, identity: ChatIdentity, key: SessionKey, stale: ChatToken | None
    ) -> Op[ChatToken]:
        try:
            issued = yield ProviderCall(self.provider.issue(identity, self.token_ttl))
        except ChatAuthError as exc:
            # Tokens the failed flow minted and could not revoke itself.
            for orphan in exc.unrevoked:
                yield from self._keep_or_log(orphan, exc)
            raise
        token = self._finish(issued)
        try:
            yield StoreCall("set", key, token)
        except StoreUnavailableError:
            # Nobody will ever be handed this token: revoke it now, or keep its revocation
            # durably, rather than leave it alive at the provider. (A user-wide revocation
            # would end the user's other sessions: such tokens are left to expire.)
            if self.provider.revocation == "token":
                yield from self._revoke_or_keep(token)
            raise
        logger.info("chatauth issued a %s token for uid %s", self.provider.name, identity.uid)
        if stale is not None and self.provider.revocation == "token":
            yield from self._revoke_or_queue(stale)
        return token

    # -- end_session ---------------------------------------------------------------------
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
        ended: list[ChatToken] = self._drive(self._end_session(user, app_session))
        return ended

    async def aend_session(self, user: Any, app_session: str | None = None) -> list[ChatToken]:
        """Async twin of :meth:`end_session`."""
        ended: list[ChatToken] = await self._adrive(self._end_session(user, app_session))
        return ended

    def _end_session(self, user: Any, app_session: str | None) -> Op[list[ChatToken]]:
        identity = self.identity_for(user)
        return (yield from self._end(identity, self._key(identity, app_session)))

    def _end(self, identity: ChatIdentity, key: SessionKey) -> Op[list[ChatToken]]:
        popped: list[ChatToken] = yield Locked(key, self._pop(identity, key), local=True)
        yield from self._revoke_ended(identity, popped)
        return popped

    def _pop(self, identity: ChatIdentity, key: SessionKey) -> Op[list[ChatToken]]:
        if self.provider.revocation == "user":
            popped: list[ChatToken] = yield StoreCall("pop_user", self.provider.name, identity.uid)
            return popped
        token = yield StoreCall("pop", key)
        return [token] if token else []

    def _revoke_ended(self, identity: ChatIdentity, popped: list[ChatToken]) -> Op[int]:
        """Revoke (or queue) what ending ``identity``'s sessions took out of the store, then
        fire :attr:`on_session_ended`. Returns how many revocations were queued."""
        queued = 0
        for token in self._to_revoke(popped):
            queued += not (yield from self._revoke_or_queue(token))
        if popped:
            self._ended(identity, popped)
        return queued

    def _to_revoke(self, popped: list[ChatToken]) -> list[ChatToken]:
        if self.provider.revocation == "none":
            return []
        if self.provider.revocation == "user":
            # One call kills every token of the user; the newest token authenticates it.
            return sorted(popped, key=lambda t: t.issued_at)[-1:]
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
        ended: list[ChatToken] = self._drive(self._end_session_durably(user, app_session))
        return ended

    async def aend_session_durably(
        self, user: Any, app_session: str | None = None
    ) -> list[ChatToken]:
        """Async twin of :meth:`end_session_durably` (the journal write, a small file append
        with ``fsync``, runs in a worker thread)."""
        ended: list[ChatToken] = await self._adrive(self._end_session_durably(user, app_session))
        return ended

    def _end_session_durably(self, user: Any, app_session: str | None) -> Op[list[ChatToken]]:
        identity = self.identity_for(user)
        key = self._key(identity, app_session)
        try:
            return (yield from self._end(identity, key))
        except StoreUnavailableError as exc:
            if self.journal is None:
                raise
            yield Blocking(self.journal.record, key, now=self.clock.now())
            logger.warning(
                "chatauth could not end a %s session of uid %s (%s); journaled for the sweep",
                self.provider.name,
                identity.uid,
                exc.code,
            )
            return []

    def end_all_sessions(self, user: Any) -> list[ChatToken]:
        """End every chat session of ``user`` (all app sessions): password change, admin
        action, ``end-sessions`` commands. Returns the dropped tokens."""
        ended: list[ChatToken] = self._drive(self._end_all_sessions(user))
        return ended

    async def aend_all_sessions(self, user: Any) -> list[ChatToken]:
        """Async twin of :meth:`end_all_sessions`."""
        ended: list[ChatToken] = await self._adrive(self._end_all_sessions(user))
        return ended

    def _end_all_sessions(self, user: Any) -> Op[list[ChatToken]]:
        identity = self.identity_for(user)
        popped: list[ChatToken] = yield StoreCall("pop_user", self.provider.name, identity.uid)
        yield from self._revoke_ended(identity, popped)
        return popped

    def end_tokens(self, tokens: list[ChatToken]) -> int:
        """End chat sessions whose tokens were already taken out of the store by other means
        (an admin action, a sweep of expired app sessions): revoke them as
        :meth:`end_session` does and fire :attr:`on_session_ended` once per UID.

        For user-wide revocation the UID's other stored tokens are dropped too.

        Returns:
            how many revocations failed and were queued for :meth:`revoke_pending`.
        """
        queued: int = self._drive(self._end_tokens(tokens))
        return queued

    async def aend_tokens(self, tokens: list[ChatToken]) -> int:
        """Async twin of :meth:`end_tokens`."""
        queued: int = await self._adrive(self._end_tokens(tokens))
        return queued

    def _end_tokens(self, tokens: list[ChatToken]) -> Op[int]:
        by_uid: dict[str, list[ChatToken]] = {}
        for token in tokens:
            by_uid.setdefault(token.uid, []).append(token)
        queued = 0
        for uid, mine in by_uid.items():
            if self.provider.revocation == "user":
                mine += yield StoreCall("pop_user", self.provider.name, uid)
            queued += yield from self._revoke_ended(ChatIdentity(uid), mine)
        return queued

    # -- revocation --------------------------------------------------------------------------
    def _revoke_or_queue(self, token: ChatToken) -> Op[bool]:
        """Revoke ``token``; if the provider fails, queue the revocation (:meth:`_queue`).
        True when revoked now."""
        try:
            yield ProviderCall(self.provider.revoke(token))
        except (ProviderUnavailableError, ProviderError) as exc:
            yield from self._queue(token, exc)
            return False
        return True

    def _queue(self, token: ChatToken, exc: ChatAuthError) -> Op[None]:
        """Keep a revocation that failed for :meth:`revoke_pending`. With the store down too,
        keep it in :attr:`journal` (if there is one) for :meth:`sweep`.

        Raises:
            StoreUnavailableError: the store is down and there is no journal.
            OSError: the store is down and the journal could not be written either.
        """
        try:
            yield StoreCall("add_pending", token, exc.code)
        except StoreUnavailableError as down:
            if self.journal is None:
                raise
            payload = self.store.dump(token).decode()
            yield Blocking(self.journal.record_revocation, payload, now=self.clock.now())
            self._log_kept(token, exc, f"journaled for the sweep, the store failing ({down.code})")
            return
        self._log_kept(token, exc, "queued for revoke-pending")

    def _revoke_or_keep(self, token: ChatToken) -> Op[None]:
        """Revoke a token that nobody holds, or keep its revocation; never raises: a token
        that cannot be kept anywhere is logged as an error (it lives until it expires)."""
        try:
            yield ProviderCall(self.provider.revoke(token))
        except ChatAuthError as exc:
            yield from self._keep_or_log(token, exc)

    def _keep_or_log(self, token: ChatToken, exc: ChatAuthError) -> Op[None]:
        try:
            yield from self._queue(token, exc)
        except (StoreUnavailableError, OSError) as lost:
            logger.error(
                "chatauth could not revoke a %s token of uid %s (%s) nor keep it for later"
                " (%s): it stays valid at the provider until it expires",
                token.provider,
                token.uid,
                exc.code,
                getattr(lost, "code", type(lost).__name__),
            )

    def _log_kept(self, token: ChatToken, exc: ChatAuthError, where: str) -> None:
        logger.warning(
            "chatauth could not revoke a %s token of uid %s (%s); %s",
            token.provider,
            token.uid,
            exc.code,
            where,
        )

    # -- upkeep: chatauth.upkeep ---------------------------------------------------------
    def revoke_pending(self, limit: int = 100) -> RevocationReport:
        """Retry queued revocations (up to ``limit``). Expired tokens are dropped as done;
        failures stay queued with their attempt count. Nothing is dropped silently.

        Queued chat-user operations (:mod:`chatauth.chat_users`: an update, deactivation or
        erasure the provider was down for) share the queue and are finished here too; they
        count as ``revoked``/``failed`` like revocations."""
        report: RevocationReport = self._drive(upkeep.revoke_pending(self, limit))
        return report

    async def arevoke_pending(self, limit: int = 100) -> RevocationReport:
        """Async twin of :meth:`revoke_pending`."""
        report: RevocationReport = await self._adrive(upkeep.revoke_pending(self, limit))
        return report

    def replay_journal(self) -> tuple[int, int]:
        """Finish what :attr:`journal` kept while the store was down: the ends
        :meth:`end_session_durably` journaled, and the revocations no one could take
        (:meth:`sweep` runs it first). Stops at the first store failure, keeping the rest.

        Returns:
            ``(finished, remaining)``; ``(0, 0)`` without a journal.

        Raises:
            StoreUnavailableError: the store is still down (the entries stay journaled).
        """
        counts: tuple[int, int] = self._drive(upkeep.replay_journal(self))
        return counts

    def sweep(
        self,
        idle: float | timedelta | None = None,
        *,
        now: datetime | None = None,
        limit: int = 1000,
    ) -> SweepReport:
        """End the chat sessions nobody will be served again, so no token outlives its app
        session at the provider (DESIGN §8).

        First finishes what :attr:`journal` kept (:meth:`replay_journal`). Then takes out of
        the store every token of this provider that is past its ``refresh_at`` (or expiry),
        or was last served more than ``idle`` ago (its app session expired or was
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
        report: SweepReport = self._drive(upkeep.sweep(self, idle, now, limit))
        return report

    async def asweep(
        self,
        idle: float | timedelta | None = None,
        *,
        now: datetime | None = None,
        limit: int = 1000,
    ) -> SweepReport:
        """Async twin of :meth:`sweep`."""
        report: SweepReport = await self._adrive(upkeep.sweep(self, idle, now, limit))
        return report

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
