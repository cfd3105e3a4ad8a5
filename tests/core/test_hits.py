"""The process's cache of served chat sessions (``LOCAL_CACHE``, :mod:`chatauth.hits`): what
it spares, and how far it may lag behind the store. Two services over one SQLite file stand
for two worker processes; a manual clock moves time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, StoreUnavailableError
from chatauth.config import from_settings
from chatauth.effects import StoreCall
from chatauth.refresh import refresh_session
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.clock import ManualClock
from tests.core.providers import CountingProvider

ALICE = ChatIdentity("user-alice")


class Worker:
    """One worker process's service over the shared SQLite file."""

    def __init__(self, path: Path, clock: ManualClock, local_cache: float = 5) -> None:
        self.store = SQLiteStore(path, clock=clock, timeout=0)
        self.provider = CountingProvider(clock=clock)
        self.chat = ChatAuth(self.provider, self.store, clock=clock, local_cache=local_cache)

    def token(self, identity: ChatIdentity = ALICE, sid: str = "s") -> str:
        return self.chat.get_session(identity, sid).token.value


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def workers(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[Worker, Worker]]:
    one, two = Worker(tmp_path / "s.db", clock), Worker(tmp_path / "s.db", clock)
    try:
        yield one, two
    finally:
        one.chat.close()
        two.chat.close()


def test_another_workers_logout_is_seen_within_the_window(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, two = workers
    first = one.token()
    assert one.token() == first  # read from the store, and kept
    two.chat.end_session(ALICE, "s")  # another worker logs the session out
    assert one.token() == first  # kept: the store was not asked...
    clock.advance(5)
    assert one.token() != first  # ...until the window closed: the session is new
    assert one.provider.issued == 2


def test_a_change_made_here_is_seen_at_once(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    first = one.token()
    assert one.token() == first
    one.chat.end_session(ALICE, "s")
    second = one.token()
    assert second != first
    assert one.token() == second
    ended = one.chat.end_all_sessions(ALICE)
    assert [t.value for t in ended] == [second]
    assert one.token() not in (first, second)


def test_a_refresh_replaces_the_kept_session(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    first = one.token()
    assert one.token() == first
    renewed = refresh_session(one.chat, ALICE, "s", first).token.value
    assert renewed != first
    assert one.token() == renewed


def test_the_sweep_forgets_every_kept_session(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    one.token()
    one.token()
    assert len(one.chat._hits) == 1
    one.chat.sweep()
    assert len(one.chat._hits) == 0


def test_a_session_is_never_kept_past_its_freshness(tmp_path: Path, clock: ManualClock) -> None:
    store = SQLiteStore(tmp_path / "f.db", clock=clock)
    chat = ChatAuth(
        CountingProvider(clock=clock),
        store,
        clock=clock,
        token_ttl=60,
        refresh_margin=10,
        local_cache=60,
    )
    try:
        first = chat.get_session(ALICE, "s").token.value
        clock.advance(45)
        assert chat.get_session(ALICE, "s").token.value == first  # read, and kept 5 s more
        clock.advance(5)  # 10 s left: no longer fresh, whatever the cache's own 60 s
        assert chat.get_session(ALICE, "s").token.value != first
    finally:
        chat.close()


def test_a_changed_profile_is_not_served_from_the_cache(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    one.token()
    one.token()
    renamed = ChatIdentity("user-alice", name="Alice Liddell")
    assert one.chat.get_session(renamed, "s").identity == renamed


def test_a_kept_session_is_served_through_a_short_store_outage(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    first = one.token()
    assert one.token() == first
    one.store.close()
    path = one.store.path
    path.rename(path.with_suffix(".moved"))
    path.mkdir()  # where the database was, SQLite can open nothing now
    assert one.token() == first
    clock.advance(5)
    with pytest.raises(StoreUnavailableError):
        one.token()


def test_a_read_that_raced_a_change_is_not_kept(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, _ = workers
    one.token()
    one.chat._hits.clear()
    # The read of the next request, paused just before the store answers it...
    op = one.chat._get_session(ALICE, "s")
    read = next(op)
    assert isinstance(read, StoreCall) and read.method == "get"
    stored = one.store.get(*read.args)
    one.chat.end_session(ALICE, "s")  # ...while a logout on another thread ends it
    with pytest.raises(StopIteration):
        op.send(stored)  # the read completes with the token it saw before the logout
    assert len(one.chat._hits) == 0  # but does not keep it
    assert stored is not None and one.token() != stored.value


def test_the_async_path_keeps_and_drops_alike(
    workers: tuple[Worker, Worker], clock: ManualClock
) -> None:
    one, two = workers

    async def token() -> str:
        return (await one.chat.aget_session(ALICE, "s")).token.value

    async def scenario() -> None:
        first = await token()
        assert await token() == first
        two.chat.end_session(ALICE, "s")
        assert await token() == first
        clock.advance(5)
        second = await token()
        assert second != first
        await one.chat.aend_session(ALICE, "s")
        assert await token() != second

    asyncio.run(scenario())


def test_zero_keeps_nothing(tmp_path: Path, clock: ManualClock) -> None:
    one = Worker(tmp_path / "z.db", clock, local_cache=0)
    two = Worker(tmp_path / "z.db", clock)
    try:
        first = one.token()
        assert one.token() == first
        two.chat.end_session(ALICE, "s")
        assert one.token() != first
        assert len(one.chat._hits) == 0
    finally:
        one.chat.close()
        two.chat.close()


@pytest.mark.parametrize("value", [-1, 61, "soon", float("nan")])
def test_the_setting_is_checked(value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_settings(
            {"PROVIDER": "jwt", "JWT_SECRET": "s" * 32, "STORE": "memory://", "LOCAL_CACHE": value}
        )
    assert caught.value.setting == "LOCAL_CACHE"


def test_the_setting_reaches_the_service() -> None:
    chat = from_settings(
        {"PROVIDER": "jwt", "JWT_SECRET": "s" * 32, "STORE": "memory://", "LOCAL_CACHE": 2}
    )
    assert chat._hits.seconds == 2
    assert "token" not in repr(chat._hits)
