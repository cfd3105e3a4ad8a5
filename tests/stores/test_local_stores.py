"""The store contract on MemoryStore and SQLiteStore (real files), and SQLite across processes."""

from __future__ import annotations

import multiprocessing
import os
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from chatauth import ChatAuth, ChatToken, SessionKey, StoreUnavailableError
from chatauth.stores.base import BaseStore, LockTimeoutError
from chatauth.stores.memory import MemoryStore
from chatauth.stores.sqlite import SQLiteStore
from tests.core.providers import CountingProvider

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def token(value: str, uid: str = "u1", **kw: object) -> ChatToken:
    return ChatToken(
        value=value, uid=uid, provider="p", issued_at=NOW, expires_at=NOW + timedelta(hours=1), **kw
    )  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseStore]:
    made: BaseStore = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
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


def test_lock_excludes_and_expires(store: BaseStore) -> None:
    key = SessionKey("p", "u1", "a")
    assert store._try_lock(key, "one", ttl=0.3)
    assert not store._try_lock(key, "two", ttl=0.3)
    store._unlock(key, "two")  # not the owner: no effect
    assert not store._try_lock(key, "two", ttl=0.3)
    time.sleep(0.35)  # a crashed holder's lock expires
    assert store._try_lock(key, "two", ttl=5)
    with pytest.raises(LockTimeoutError), store.lock(key, ttl=5, wait=0.2):
        pass
    store._unlock(key, "two")
    with store.lock(key, ttl=5, wait=0.2):
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


def _race(path: str, count_file: str, barrier: Any, out: Any) -> None:
    chat = ChatAuth(CountingProvider(delay=0.3, count_file=count_file), SQLiteStore(path))
    barrier.wait()
    out.put(chat.get_session(_User(), "one-browser-session").token.value)
    chat.close()


class _User:
    pk = 77


def test_two_processes_racing_for_one_key_issue_one_token(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    path, count_file = str(tmp_path / "shared.db"), str(tmp_path / "issues.log")
    SQLiteStore(path).close()  # create the schema before the race
    barrier, out = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, count_file, barrier, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    values = [out.get(timeout=60), out.get(timeout=60)]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    assert values[0] == values[1]
    assert Path(count_file).read_text().count("\n") == 1
