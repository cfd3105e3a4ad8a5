"""The token store protocol and the parts every store shares (DESIGN §4).

A store keeps, per :class:`~chatauth.tokens.SessionKey`, the current chat token; a lock per
key so that only one worker process issues a token at a time (cross-process single-flight);
and the pending-revocation list, so that a token whose revocation failed at logout is retried
later instead of being forgotten.

Stores implement the synchronous methods; :class:`BaseStore` derives the ``a``-prefixed async
twins by running them in a worker thread, so an async app never blocks its event loop on a
file or socket. A store with a native async client (Redis) overrides them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import ParamSpec, Protocol, TypeVar

from chatauth.clock import SYSTEM_CLOCK, Clock
from chatauth.errors import ProviderUnavailableError
from chatauth.tokens import ChatToken, SessionKey

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["BaseStore", "LockTimeoutError", "PendingRevocation", "TokenCipher"]


class TokenCipher(Protocol):
    """Encrypts token payloads at rest (e.g. Fernet). ``decrypt`` raises
    :class:`~chatauth.errors.ConfigurationError` for a wrong key."""

    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, data: bytes) -> bytes: ...


class LockTimeoutError(ProviderUnavailableError):
    """Another worker held the issue lock for longer than the wait allowed."""

    code = "ERROR_PROVIDER_UNAVAILABLE"


@dataclasses.dataclass(frozen=True)
class PendingRevocation:
    """A token whose revocation at the provider has not succeeded yet.

    Attributes:
        id: the store's id for the entry (string).
        token: the token to revoke.
        attempts: how many revocations were tried so far.
        last_error: the error code of the last failure (no secret).
        created_at: UTC datetime the entry was queued.
    """

    id: str
    token: ChatToken
    attempts: int
    last_error: str
    created_at: datetime

    def __repr__(self) -> str:
        return (
            f"PendingRevocation(id={self.id!r}, token={self.token!r}, attempts={self.attempts},"
            f" last_error={self.last_error!r})"
        )


class BaseStore:
    """Shared behaviour of the stores: serialisation, the lock loop and async twins.

    Subclasses implement :meth:`get`, :meth:`set`, :meth:`pop`, :meth:`pop_user`,
    :meth:`_try_lock`, :meth:`_unlock`, :meth:`add_pending`, :meth:`pending`,
    :meth:`remove_pending`, :meth:`count_pending` and :meth:`sessions`, and, for the sweep
    (DESIGN §8: issued -> served -> ended), :meth:`touch` and :meth:`sweep`.

    Args:
        cipher: optional :class:`TokenCipher`; without one, payloads are stored as JSON and
            the store relies on its medium's access control (file mode 0600, Redis ACL).
        clock: the :class:`~chatauth.clock.Clock` that lock expiries, lock waits and queue
            times are read from (default the system clock; tests pass a manual one).
    """

    name = "store"
    lock_poll_interval = 0.05  # seconds between lock attempts while waiting

    def __init__(self, *, cipher: TokenCipher | None = None, clock: Clock | None = None) -> None:
        self.cipher = cipher
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"

    # -- serialisation ---------------------------------------------------------------------
    def dump(self, token: ChatToken) -> bytes:
        """Serialise (and encrypt, with a cipher) a token for storage."""
        raw = json.dumps(token.to_dict(), separators=(",", ":")).encode()
        return self.cipher.encrypt(raw) if self.cipher else raw

    def load(self, data: bytes | str, *, served_at: datetime | None = None) -> ChatToken:
        """The inverse of :meth:`dump`; ``served_at`` (aware UTC) is the store's record of
        when the token was last served, kept outside the payload."""
        raw = data.encode() if isinstance(data, str) else data
        if self.cipher:
            raw = self.cipher.decrypt(raw)
        return ChatToken.from_dict(json.loads(raw), served_at=served_at)

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        """The stored token for ``key``, or ``None``."""
        raise NotImplementedError

    def set(self, key: SessionKey, token: ChatToken) -> None:
        """Store ``token`` under ``key``, replacing any previous one."""
        raise NotImplementedError

    def pop(self, key: SessionKey) -> ChatToken | None:
        """Remove and return the token under ``key`` (``None`` if there was none)."""
        raise NotImplementedError

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        """Remove and return every stored token of one chat user (all app sessions)."""
        raise NotImplementedError

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        """Stored tokens, optionally filtered, for admin screens and CLIs."""
        raise NotImplementedError

    def session_keys(self, provider: str) -> list[SessionKey]:
        """The key of every stored token of ``provider``, each known by its digest
        (:meth:`SessionKey.from_digest <chatauth.tokens.SessionKey.from_digest>`: the app
        session id itself is not kept), in no particular order.

        For a sweep that asks the app which of its sessions still exist (Django's session
        rows): :meth:`pop` takes a token out by such a key.
        """
        raise NotImplementedError

    # -- the session lifecycle: served at, the sweep -------------------------------------
    def touch(self, key: SessionKey, served_at: datetime) -> None:
        """Record that the token under ``key`` was served at ``served_at`` (aware UTC).

        :meth:`set` records the store clock's now as the served time of a new token; the
        service calls this on cached hits, at most once per granularity per token, so the
        cached path stays cheap. No error when there is no token under ``key`` any more.
        """
        raise NotImplementedError

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        """Remove and return up to ``limit`` tokens of ``provider`` that nobody will be served
        again: past their :meth:`~chatauth.tokens.ChatToken.usable_until` (``refresh_at`` or
        ``expires_at``) at ``now``, or last served before ``idle_before`` (an abandoned app
        session). Each token is removed by exactly one caller, however many sweep at once,
        and a token stored again meanwhile under the same key (re-issued) is left alone.
        """
        raise NotImplementedError

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        """Take the lock for ``key`` if it is free or expired; ``True`` on success."""
        raise NotImplementedError

    def _unlock(self, key: SessionKey, owner: str) -> None:
        """Release the lock for ``key`` if ``owner`` still holds it."""
        raise NotImplementedError

    @contextlib.contextmanager
    def lock(self, key: SessionKey, *, ttl: float = 30.0, wait: float = 35.0) -> Iterator[None]:
        """Hold the cross-process issue lock for ``key``.

        Args:
            ttl: seconds after which a crashed holder's lock expires.
            wait: seconds to wait for the lock before giving up.

        Raises:
            LockTimeoutError: the lock stayed taken for ``wait`` seconds.
        """
        owner = secrets.token_hex(8)
        deadline = self.clock.monotonic() + wait
        while not self._try_lock(key, owner, ttl):
            if self.clock.monotonic() >= deadline:
                raise LockTimeoutError(
                    "Another worker is still issuing this chat token.",
                    provider=self.name,
                    retry_after=1,
                )
            time.sleep(self.lock_poll_interval)
        try:
            yield
        finally:
            self._unlock(key, owner)

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        """Queue ``token`` for a later revocation attempt."""
        raise NotImplementedError

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        """Up to ``limit`` queued revocations, oldest first."""
        raise NotImplementedError

    def remove_pending(self, entry: PendingRevocation) -> None:
        """Drop a queued revocation (it succeeded, or the token has expired anyway)."""
        raise NotImplementedError

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        """Record one more failed attempt of a queued revocation."""
        raise NotImplementedError

    def count_pending(self) -> int:
        """How many revocations are queued."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the store may not be used afterwards."""

    # -- async twins -------------------------------------------------------------------------
    async def _in_thread(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run one blocking store call off the event loop; every async twin goes through here.

        A store whose medium has its own rule for leaving the loop overrides this one method
        (the Django ORM store: ``sync_to_async``); a store with a native async client (Redis)
        or an in-memory one overrides the twins themselves.
        """
        return await asyncio.to_thread(func, *args, **kwargs)

    async def aget(self, key: SessionKey) -> ChatToken | None:
        return await self._in_thread(self.get, key)

    async def aset(self, key: SessionKey, token: ChatToken) -> None:
        await self._in_thread(self.set, key, token)

    async def apop(self, key: SessionKey) -> ChatToken | None:
        return await self._in_thread(self.pop, key)

    async def apop_user(self, provider: str, uid: str) -> list[ChatToken]:
        return await self._in_thread(self.pop_user, provider, uid)

    async def asessions(
        self, provider: str | None = None, uid: str | None = None
    ) -> list[ChatToken]:
        return await self._in_thread(self.sessions, provider, uid)

    async def atouch(self, key: SessionKey, served_at: datetime) -> None:
        await self._in_thread(self.touch, key, served_at)

    async def asweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        return await self._in_thread(
            lambda: self.sweep(provider, now=now, idle_before=idle_before, limit=limit)
        )

    async def _atry_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        return await self._in_thread(self._try_lock, key, owner, ttl)

    async def _aunlock(self, key: SessionKey, owner: str) -> None:
        await self._in_thread(self._unlock, key, owner)

    @contextlib.asynccontextmanager
    async def alock(
        self, key: SessionKey, *, ttl: float = 30.0, wait: float = 35.0
    ) -> AsyncIterator[None]:
        """The async twin of :meth:`lock`; waits with ``asyncio.sleep``."""
        owner = secrets.token_hex(8)
        deadline = self.clock.monotonic() + wait
        while not await self._atry_lock(key, owner, ttl):
            if self.clock.monotonic() >= deadline:
                raise LockTimeoutError(
                    "Another worker is still issuing this chat token.",
                    provider=self.name,
                    retry_after=1,
                )
            await asyncio.sleep(self.lock_poll_interval)
        try:
            yield
        finally:
            await self._aunlock(key, owner)

    async def aadd_pending(self, token: ChatToken, error_code: str) -> None:
        await self._in_thread(self.add_pending, token, error_code)

    async def apending(self, limit: int = 100) -> list[PendingRevocation]:
        return await self._in_thread(self.pending, limit)

    async def aremove_pending(self, entry: PendingRevocation) -> None:
        await self._in_thread(self.remove_pending, entry)

    async def aretry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        await self._in_thread(self.retry_failed, entry, error_code)

    async def acount_pending(self) -> int:
        return await self._in_thread(self.count_pending)

    async def aclose(self) -> None:
        await self._in_thread(self.close)
