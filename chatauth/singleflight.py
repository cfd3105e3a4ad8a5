"""In-process single-flight: one lock per key, for threads and for asyncio tasks.

``share(key, work)`` runs ``work`` once for all the callers of a key that arrive while it
runs: the first caller (the leader) runs it holding the key's lock; the others wait on one
future per key and get the leader's result, or its exception, without taking the lock in
turn and each re-reading the store.

Locks are created on first use and dropped once nobody holds or waits for them, so a
long-running process does not accumulate one lock per user ever seen.

Both classes can report contention: :attr:`KeyedLocks.on_wait` is called with the key each
time a caller finds the key held and is about to wait for it. Diagnostics can count that;
tests use it to see a race happen (the second caller observed waiting while the first is
inside the provider call) instead of hoping a sleep made it happen.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

__all__ = ["AsyncKeyedLocks", "KeyedLocks", "WaitHook"]

T = TypeVar("T")

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
        self._flights: dict[str, concurrent.futures.Future[Any]] = {}
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

    def share(self, key: str, work: Callable[[], T]) -> T:
        """``work()`` under ``hold(key)`` by the first caller; callers arriving while it runs
        wait for it and get its result (or its exception) instead of running it again."""
        with self._guard:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = concurrent.futures.Future()
        if not leader:
            hook = self.on_wait
            if hook is not None:
                hook(key)
            result: T = flight.result()
            return result
        try:
            with self.hold(key):
                result = work()
        except BaseException as exc:
            flight.set_exception(exc)
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            with self._guard:
                del self._flights[key]


class AsyncKeyedLocks:
    """``async with locks.hold(key):`` -- the asyncio twin of :class:`KeyedLocks`.

    Only touched from the event loop's thread, so the bookkeeping needs no thread lock.

    Attributes:
        on_wait: a :data:`WaitHook` or ``None`` (the default); it runs on the event loop, so
            it must not block.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._flights: dict[str, asyncio.Future[Any]] = {}
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

    async def share(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()`` under ``hold(key)`` by the first task; tasks arriving while it runs
        await the same future and get its result (or its exception). A waiter whose leader
        was cancelled (the leader's client went away) tries again rather than fail."""
        flight = self._flights.get(key)
        if flight is not None:
            if self.on_wait is not None:
                self.on_wait(key)
            try:
                result: T = await asyncio.shield(flight)
            except asyncio.CancelledError:
                # Our own cancellation wins (Task.cancelling() from Python 3.11 on).
                cancelling = getattr(asyncio.current_task(), "cancelling", None)
                if not flight.cancelled() or (cancelling is not None and cancelling()):
                    raise
                return await self.share(key, work)
            return result
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            async with self.hold(key):
                result = await work()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            # Marked as retrieved: with no waiter, asyncio would log it as never retrieved.
            flight.exception()
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            del self._flights[key]
