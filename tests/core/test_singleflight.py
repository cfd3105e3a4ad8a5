"""Single-flight: the callers of one key share the leader's result, its error, and survive its
cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from chatauth.singleflight import AsyncKeyedLocks, KeyedLocks

TIMEOUT = 10.0


async def test_waiters_share_the_leaders_result_and_it_runs_once() -> None:
    locks = AsyncKeyedLocks()
    release = asyncio.Event()
    all_waiting = asyncio.Event()
    runs = 0
    waiting: list[str] = []

    def saw_wait(key: str) -> None:
        waiting.append(key)
        if len(waiting) == 99:
            all_waiting.set()

    locks.on_wait = saw_wait

    async def work() -> object:
        nonlocal runs
        runs += 1
        await release.wait()
        return object()

    tasks = [asyncio.create_task(locks.share("k", work)) for _ in range(100)]
    await asyncio.wait_for(all_waiting.wait(), TIMEOUT)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), TIMEOUT)
    assert runs == 1
    assert len({id(r) for r in results}) == 1
    assert len(locks) == 0 and locks._flights == {}


async def test_waiters_share_the_leaders_error() -> None:
    locks = AsyncKeyedLocks()
    release = asyncio.Event()
    runs = 0

    async def work() -> None:
        nonlocal runs
        runs += 1
        await release.wait()
        raise RuntimeError("provider down")

    tasks = [asyncio.create_task(locks.share("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert runs == 1
    assert all(isinstance(r, RuntimeError) for r in results)
    # The next caller runs the work again: an error is not cached.
    release.set()
    with pytest.raises(RuntimeError):
        await locks.share("k", work)
    assert runs == 2


async def test_a_waiter_outlives_a_cancelled_leader() -> None:
    locks = AsyncKeyedLocks()
    entered = asyncio.Event()
    calls = 0

    async def work() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            await asyncio.Event().wait()  # the first leader hangs until cancelled
        return "fresh"

    leader = asyncio.create_task(locks.share("k", work))
    await entered.wait()
    waiter = asyncio.create_task(locks.share("k", work))
    await asyncio.sleep(0)
    leader.cancel()
    assert await asyncio.wait_for(waiter, TIMEOUT) == "fresh"
    assert leader.cancelled()
    assert calls == 2


def test_threads_share_the_leaders_result() -> None:
    locks = KeyedLocks()
    inside = threading.Event()
    release = threading.Event()
    waiting = threading.Semaphore(0)
    locks.on_wait = lambda key: waiting.release()
    runs = 0
    results: list[object] = []

    def work() -> object:
        nonlocal runs
        runs += 1
        inside.set()
        assert release.wait(TIMEOUT)
        return object()

    def call() -> None:
        results.append(locks.share("k", work))

    first = threading.Thread(target=call)
    first.start()
    assert inside.wait(TIMEOUT)
    others = [threading.Thread(target=call) for _ in range(20)]
    for thread in others:
        thread.start()
    for _ in others:
        assert waiting.acquire(timeout=TIMEOUT)
    release.set()
    for thread in [first, *others]:
        thread.join(TIMEOUT)
    assert runs == 1 and len(results) == 21 and len({id(r) for r in results}) == 1
    assert len(locks) == 0 and locks._flights == {}
