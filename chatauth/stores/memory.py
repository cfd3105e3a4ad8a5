"""An in-memory token store: for tests and single-process development servers."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from datetime import datetime

from chatauth.clock import Clock
from chatauth.stores.base import BaseStore, PendingRevocation
from chatauth.tokens import ChatToken, SessionKey

__all__ = ["MemoryStore"]


class MemoryStore(BaseStore):
    """Tokens in a dict, guarded by a thread lock. Nothing survives the process, and nothing
    is shared between worker processes: use :class:`~chatauth.stores.sqlite.SQLiteStore` or
    Redis for that.

    Args:
        clock: the :class:`~chatauth.clock.Clock` issue locks expire by (its monotonic
            seconds) and queued revocations are dated with; default the system clock.
    """

    name = "memory"

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._mutex = threading.Lock()
        # digest -> (key, token with its served_at)
        self._tokens: dict[str, tuple[SessionKey, ChatToken]] = {}
        self._locks: dict[str, tuple[str, float]] = {}
        self._pending: dict[str, PendingRevocation] = {}
        self._ids = itertools.count(1)

    def get(self, key: SessionKey) -> ChatToken | None:
        with self._mutex:
            entry = self._tokens.get(key.digest)
        return entry[1] if entry else None

    def set(self, key: SessionKey, token: ChatToken) -> None:
        token = dataclasses.replace(token, served_at=self.clock.now())
        with self._mutex:
            self._tokens[key.digest] = (key, token)

    def touch(self, key: SessionKey, served_at: datetime) -> None:
        with self._mutex:
            entry = self._tokens.get(key.digest)
            if entry is not None:
                self._tokens[key.digest] = (key, dataclasses.replace(entry[1], served_at=served_at))

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        def done(token: ChatToken) -> bool:
            until = token.usable_until()
            served = token.served_at
            return (until is not None and until <= now) or (
                served is not None and served < idle_before
            )

        with self._mutex:
            digests = [
                d for d, (k, t) in self._tokens.items() if k.provider == provider and done(t)
            ][:limit]
            return [self._tokens.pop(d)[1] for d in digests]

    def pop(self, key: SessionKey) -> ChatToken | None:
        with self._mutex:
            entry = self._tokens.pop(key.digest, None)
        return entry[1] if entry else None

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        with self._mutex:
            digests = [
                d for d, (k, _) in self._tokens.items() if k.provider == provider and k.uid == uid
            ]
            return [self._tokens.pop(d)[1] for d in digests]

    def session_keys(self, provider: str) -> list[SessionKey]:
        with self._mutex:
            return [
                SessionKey.from_digest(k.provider, k.uid, d)
                for d, (k, _) in self._tokens.items()
                if k.provider == provider
            ]

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        with self._mutex:
            return [
                t
                for k, t in self._tokens.values()
                if (provider is None or k.provider == provider) and (uid is None or k.uid == uid)
            ]

    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        now = self.clock.monotonic()
        with self._mutex:
            held = self._locks.get(key.digest)
            if held and held[1] > now:
                return False
            self._locks[key.digest] = (owner, now + ttl)
            return True

    def _unlock(self, key: SessionKey, owner: str) -> None:
        with self._mutex:
            held = self._locks.get(key.digest)
            if held and held[0] == owner:
                del self._locks[key.digest]

    def add_pending(self, token: ChatToken, error_code: str) -> None:
        with self._mutex:
            entry_id = str(next(self._ids))
            self._pending[entry_id] = PendingRevocation(
                entry_id, token, 1, error_code, self.clock.now()
            )

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        with self._mutex:
            return list(self._pending.values())[:limit]

    def remove_pending(self, entry: PendingRevocation) -> None:
        with self._mutex:
            self._pending.pop(entry.id, None)

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        with self._mutex:
            current = self._pending.get(entry.id)
            if current:
                self._pending[entry.id] = PendingRevocation(
                    entry.id, current.token, current.attempts + 1, error_code, current.created_at
                )

    def count_pending(self) -> int:
        with self._mutex:
            return len(self._pending)

    # The reads and writes above hold a thread lock for a few dict operations: run them on the
    # event loop instead of hopping to a worker thread (BaseStore's default), which would cost
    # more than the work itself on the cached request path.
    async def aget(self, key: SessionKey) -> ChatToken | None:
        return self.get(key)

    async def aset(self, key: SessionKey, token: ChatToken) -> None:
        self.set(key, token)

    async def apop(self, key: SessionKey) -> ChatToken | None:
        return self.pop(key)

    async def apop_user(self, provider: str, uid: str) -> list[ChatToken]:
        return self.pop_user(provider, uid)

    async def _atry_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        return self._try_lock(key, owner, ttl)

    async def _aunlock(self, key: SessionKey, owner: str) -> None:
        self._unlock(key, owner)
