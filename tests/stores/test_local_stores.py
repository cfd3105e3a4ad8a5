"""The store contract on MemoryStore and SQLiteStore (real files), and SQLite across processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import stamina

from chatauth import ChatToken, SessionKey, StoreUnavailableError
from chatauth.stores.base import BaseStore, LockTimeoutError
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.clock import ManualClock
from tests.stores.handshake import assert_race_happened
from tests.stores.sweep_contract import check_async_sweep_contract, check_sweep_contract
from tests.stores.workers import Workers

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def token(value: str, uid: str = "u1", **kw: object) -> ChatToken:
    return ChatToken(
        value=value, uid=uid, provider="p", issued_at=NOW, expires_at=NOW + timedelta(hours=1), **kw
    )  # type: ignore[arg-type]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(params=["memory", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> Iterator[BaseStore]:
    made: BaseStore = (
        MemoryStore(clock=clock)
        if request.param == "memory"
        else SQLiteStore(tmp_path / "s.db", clock=clock)
    )
    yield made
    made.close()


def test_set_get_pop(store: BaseStore) -> None:
    key = SessionKey("p", "u1", "sess")
    assert store.get(key) is None
    store.set(key, token("t1", data={"device_id": "D"}, public=("device_id",)))
    assert store.get(key) == token("t1", data={"device_id": "D"}, public=("device_id",))
    store.set(key, token("t2"))
    assert store.get(key) == token("t2")
    assert store.pop(key) == token("t2")
    assert store.pop(key) is None


def test_pop_user_takes_only_that_users_tokens(store: BaseStore) -> None:
    store.set(SessionKey("p", "u1", "a"), token("a"))
    store.set(SessionKey("p", "u1", "b"), token("b"))
    store.set(SessionKey("p", "u2", "a"), token("c", uid="u2"))
    store.set(SessionKey("q", "u1", "a"), token("d"))
    assert sorted(t.value for t in store.pop_user("p", "u1")) == ["a", "b"]
    assert [t.value for t in store.sessions()] and {t.value for t in store.sessions()} == {"c", "d"}
    assert [t.value for t in store.sessions(uid="u2")] == ["c"]


def test_pending_revocations(store: BaseStore) -> None:
    store.add_pending(token("x"), "ERROR_PROVIDER_UNAVAILABLE")
    store.add_pending(token("y"), "ERROR_PROVIDER_UNAVAILABLE")
    assert store.count_pending() == 2
    first, _second = store.pending()
    assert (first.token.value, first.attempts) == ("x", 1)
    store.retry_failed(first, "HTTP_500")
    again = store.pending(limit=1)[0]
    assert (again.attempts, again.last_error) == (2, "HTTP_500")
    store.remove_pending(again)
    assert [p.token.value for p in store.pending()] == ["y"]
    assert "y" not in repr(store.pending()[0]).replace("'y'", "")  # sanity: repr is redacted
    assert "redacted" in repr(store.pending()[0])


def test_lock_excludes_and_expires(store: BaseStore, clock: ManualClock) -> None:
    key = SessionKey("p", "u1", "a")
    assert store._try_lock(key, "one", ttl=30)
    assert not store._try_lock(key, "two", ttl=30)
    store._unlock(key, "two")  # not the owner: no effect
    assert not store._try_lock(key, "two", ttl=30)
    clock.advance(29)
    assert not store._try_lock(key, "two", ttl=30)  # still within the holder's ttl
    clock.advance(1.5)  # a crashed holder's lock expires after its ttl
    assert store._try_lock(key, "two", ttl=30)
    # The manual clock never moves by itself, so only wait=0 can run out: the first refusal.
    with pytest.raises(LockTimeoutError), store.lock(key, ttl=5, wait=0):
        pass
    store._unlock(key, "two")
    with store.lock(key, ttl=5, wait=0):
        assert not store._try_lock(key, "three", ttl=5)
    assert store._try_lock(key, "three", ttl=5)


async def test_async_twins(store: BaseStore) -> None:
    key = SessionKey("p", "u1", "a")
    await store.aset(key, token("t"))
    assert (await store.aget(key)) == token("t")
    async with store.alock(key, wait=0.5):
        assert not store._try_lock(key, "other", ttl=5)
    await store.aadd_pending(token("t"), "X")
    assert await store.acount_pending() == 1
    assert [t.value for t in await store.apop_user("p", "u1")] == ["t"]


def test_sqlite_file_is_private_and_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "private.db"
    first = SQLiteStore(path)
    first.set(SessionKey("p", "u", "s"), token("persisted"))
    first.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    second = SQLiteStore(path)
    assert second.get(SessionKey("p", "u", "s")) == token("persisted")
    # The app session id is a secret of the app's: it is never stored in clear.
    second.close()
    assert b"\x1fs" not in path.read_bytes()


def test_sqlite_on_an_unwritable_place_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailableError) as info:
        SQLiteStore(blocker / "x.db")
    assert info.value.code == "ERROR_STORE_UNAVAILABLE"


def test_two_processes_racing_for_one_key_issue_one_token(tmp_path: Path) -> None:
    path, count_file = tmp_path / "shared.db", tmp_path / "issues.log"
    handshake = tmp_path / "handshake"
    handshake.mkdir()
    SQLiteStore(path).close()  # create the schema before the race
    config = {
        "path": str(path),
        "count_file": str(count_file),
        "handshake_dir": str(handshake),
        "waiters": 1,
    }
    argv = [sys.executable, "-m", "tests.stores.race", json.dumps(config)]
    with Workers([argv, argv], logs=tmp_path, deadline=120) as workers:
        workers.wait_ready()
        workers.go()
        values = workers.results()
    assert values[0] == values[1]
    # One issue, by the process that held the lock while the other found it taken.
    issuer = assert_race_happened(handshake, processes=2)
    assert count_file.read_text().split() == [str(issuer)]


def test_sweep_contract(store: BaseStore, clock: ManualClock) -> None:
    check_sweep_contract(store, clock)


async def test_async_sweep_contract(store: BaseStore, clock: ManualClock) -> None:
    await check_async_sweep_contract(store, clock)


def test_sqlite_file_from_before_the_sweep_gets_its_columns(
    tmp_path: Path, clock: ManualClock
) -> None:
    import sqlite3

    path = tmp_path / "old.db"
    old_schema = (
        "CREATE TABLE chatauth_tokens (key TEXT PRIMARY KEY, user_key TEXT NOT NULL,"
        " provider TEXT NOT NULL, uid TEXT NOT NULL, payload BLOB NOT NULL, expires_at REAL,"
        " updated_at REAL NOT NULL)"
    )
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute(old_schema)
        row = json.dumps(token("old").to_dict()).encode()
        db.execute(
            "INSERT INTO chatauth_tokens VALUES ('k', 'u', 'p', 'u1', ?, NULL, ?)",
            (row, clock.time() - 3600),
        )
        db.commit()
    store = SQLiteStore(path, clock=clock)
    try:
        # The old row counts as served when it was written, an hour ago.
        now = clock.now()
        swept = store.sweep("p", now=now, idle_before=now - timedelta(minutes=30))
        assert [t.value for t in swept] == ["old"]
        check_sweep_contract(store, clock)
    finally:
        store.close()


class ThreadNoting(SQLiteStore):
    """SQLiteStore, unchanged, noting the thread of every read (and saying when one runs off
    the event loop's thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, timeout=60)
        self.threads: list[int] = []
        self.off_loop = threading.Event()
        self.loop_thread = threading.get_ident()

    def get(self, key: SessionKey) -> ChatToken | None:
        self.threads.append(threading.get_ident())
        if self.threads[-1] != self.loop_thread:
            self.off_loop.set()
        return super().get(key)


async def test_an_async_sqlite_read_runs_on_the_event_loop(tmp_path: Path) -> None:
    store = ThreadNoting(tmp_path / "s.db")
    key = SessionKey("p", "u1", "s1")
    await store.aset(key, token("v1"))
    store.threads.clear()
    for _ in range(3):
        found = await store.aget(key)
        assert found is not None and found.value == "v1" and found.served_at is not None
    assert await store.aget(SessionKey("p", "u1", "other")) is None
    # No hop to a worker thread: each read ran here, where the loop runs.
    assert store.threads == [threading.get_ident()] * 4
    store.close()


async def test_an_async_read_of_a_locked_sqlite_file_waits_in_a_thread(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = ThreadNoting(path)
    key = SessionKey("p", "u1", "s1")
    store.set(key, token("v1"))
    store.close()
    # A connection in exclusive locking mode keeps even WAL readers out until it closes.
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("PRAGMA locking_mode=EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    store.threads.clear()
    read = asyncio.ensure_future(store.aget(key))
    # Refused on the loop without waiting, the read went to a worker thread, which waits.
    assert await asyncio.to_thread(store.off_loop.wait, 30)
    assert not read.done()
    blocker.close()
    found = await read
    assert found is not None and found.value == "v1"
    assert store.threads[0] == threading.get_ident() != store.threads[1]
    store.close()


def test_a_sqlite_read_of_an_unlocked_file_takes_no_retry_machinery(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    key = SessionKey("p", "u1", "s1")
    store.set(key, token("v1"))
    contexts: list[dict[str, object]] = []
    original = stamina.retry_context

    def noted(**kwargs: Any) -> Any:
        contexts.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(stamina, "retry_context", noted)
    for _ in range(3):
        assert store.get(key) is not None
    store.set(key, token("v2"))
    assert contexts == []  # only "database is locked" enters the retry loop
    store.close()
