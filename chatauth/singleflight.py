"""In-process single-flight: one lock per key, for threads and for asyncio tasks.

Locks are created on first use and dropped once nobody holds or waits for them, so a
long-running process does not accumulate one lock per user ever seen.

Both classes can report contention: :attr:`KeyedLocks.on_wait` is called with the key each
time a caller finds the key held and is about to wait for it. Diagnostics can count that;
tests use it to see a race happen (the second caller observed waiting while the first is
inside the provider call) instead of hoping a sleep made it happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator

__all__ = ["AsyncKeyedLocks", "KeyedLocks", "WaitHook"]

#: ``(key) -> None``, called by a caller that found ``key`` held, just before it waits.
WaitHook = Callable[[str], None]


class KeyedLocks:
    """``with locks.hold(key):`` -- threads holding the same key run one at a time.

    Attributes:
        on_wait: a :data:`WaitHook` or ``None`` (the default); it runs in the waiting thread.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self.on_wait: WaitHook | None = None

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (threading.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        try:
            if not lock.acquire(blocking=False):
                hook = self.on_wait
                if hook is not None:
                    hook(key)
                lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)


class AsyncKeyedLocks:
    """``async with locks.hold(key):`` -- the asyncio twin of :class:`KeyedLocks`.

    Only touched from the event loop's thread, so the bookkeeping needs no thread lock.

    Attributes:
        on_wait: a :data:`WaitHook` or ``None`` (the default); it runs on the event loop, so
            it must not block.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self.on_wait: WaitHook | None = None

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            if lock.locked() and self.on_wait is not None:
                self.on_wait(key)
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
