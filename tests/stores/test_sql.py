"""SQLAlchemyStore on the real PostgreSQL the suite starts (``postgres_server``) and on SQLite
through the same code; single-flight across 4 processes on PostgreSQL advisory locks."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, StoreUnavailableError
from chatauth.config import from_settings, store_from_url
from chatauth.stores.base import LockTimeoutError
from chatauth.stores.crypto import FernetCipher, generate_key
from chatauth.stores.sql import SQLAlchemyStore, advisory_lock_id
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken, SessionKey, utcnow
from tests.core.providers import CountingProvider, GatedProvider
from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.ports import refused_port
from tests.servers.postgres import PostgresServer
from tests.stores.sweep_contract import check_async_sweep_contract, check_sweep_contract

SECRET_VALUE = "sql-secret-token-value-0123456789"
PASSWORD = "pg-hunter2-secret"


def token(uid: str = "alice", *, value: str = SECRET_VALUE) -> ChatToken:
    now = utcnow()
    return ChatToken(
        value=value,
        uid=uid,
        provider="matrix",
        issued_at=now,
        expires_at=now + timedelta(hours=1),
        refresh_at=now + timedelta(minutes=50),
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database per test: its own PostgreSQL database, or a new SQLite file."""
    if request.param == "sqlite":
        return f"sqlite+pysqlite:///{tmp_path / 'chatauth.sqlite3'}"
    request.applymarker(pytest.mark.postgres)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"chatauth_{secrets.token_hex(6)}")


@pytest.fixture
def make_store(db_url: str) -> Iterator[Callable[..., SQLAlchemyStore]]:
    made: list[SQLAlchemyStore] = []

    def make(**kwargs: Any) -> SQLAlchemyStore:
        store = SQLAlchemyStore.from_url(db_url, **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., SQLAlchemyStore]) -> SQLAlchemyStore:
    return make_store()


def test_tokens_round_trip_pop_and_pop_user(store: SQLAlchemyStore) -> None:
    a1, a2 = SessionKey("matrix", "alice", "s1"), SessionKey("matrix", "alice", "s2")
    bob = SessionKey("matrix", "bob", "s1")
    store.set(a1, token(value="a1"))
    store.set(a1, token(value="a1-new"))  # replaces
    store.set(a2, token(value="a2"))
    store.set(bob, token("bob", value="b1"))
    assert store.get(a1).value == "a1-new"  # type: ignore[union-attr]
    assert store.get(SessionKey("matrix", "alice", "other")) is None
    assert [t.value for t in store.sessions("matrix", "alice")] == ["a1-new", "a2"]
    assert store.pop(a1).value == "a1-new"  # type: ignore[union-attr]
    assert store.pop(a1) is None
    assert [t.value for t in store.pop_user("matrix", "alice")] == ["a2"]
    assert [t.value for t in store.sessions()] == ["b1"]


def test_rows_hold_digests_and_encrypted_payloads(
    make_store: Callable[..., SQLAlchemyStore],
) -> None:
    store = make_store(cipher=FernetCipher(generate_key()))
    store.set(SessionKey("matrix", "alice", "app-session-secret"), token())
    with store.engine.connect() as conn:
        (row,) = conn.exec_driver_sql("SELECT key, user_key, payload FROM chatauth_tokens")
    assert "app-session" not in row[0] and "alice" not in row[1]
    assert SECRET_VALUE.encode() not in bytes(row[2])
    assert store.sessions()[0].value == SECRET_VALUE


def test_lock_is_exclusive_and_released_only_by_its_owner(store: SQLAlchemyStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    assert store._try_lock(key, "owner-a", 30)
    assert not store._try_lock(key, "owner-b", 30)
    store._unlock(key, "owner-b")  # not the holder: must not release
    assert not store._try_lock(key, "owner-b", 30)
    store._unlock(key, "owner-a")
    assert store._try_lock(key, "owner-b", 30)
    with pytest.raises(LockTimeoutError), store.lock(key, wait=0.2):
        pass
    store._unlock(key, "owner-b")
    with store.lock(key, wait=0.2):
        pass
    assert store._try_lock(key, "owner-c", 30)  # released on leaving the block
    store._unlock(key, "owner-c")


HOLDER = """
import signal, sys
from chatauth.config import store_from_url
from chatauth.tokens import SessionKey
store = store_from_url(sys.argv[1])
assert store._try_lock(SessionKey("matrix", "alice", "s"), "crashed-holder", 600)
print("locked", flush=True)
signal.pause()  # hold the lock until the test kills this process
"""


def test_a_crashed_holders_lock_is_freed(
    make_store: Callable[..., SQLAlchemyStore], db_url: str
) -> None:
    key = SessionKey("matrix", "alice", "s")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, db_url],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
        clock = ManualClock()  # starts after the holder took its lock
        store = make_store(clock=clock)
        assert not store._try_lock(key, "me", 30)  # the live holder has it
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    if not store.advisory:
        clock.advance(601)  # a lock row expires after its ttl, by the store's clock
    # PostgreSQL drops a dead session's advisory locks with its connection, once the server
    # has noticed the connection closed: poll it (real time; the store's clock is manual).
    deadline = time.monotonic() + REQUEST_DEADLINE
    while not store._try_lock(key, "me", 30):
        assert time.monotonic() < deadline, "the dead holder's lock was never freed"
        time.sleep(0.05)
    store._unlock(key, "me")


def test_sweep_contract(make_store: Callable[..., SQLAlchemyStore]) -> None:
    clock = ManualClock()
    check_sweep_contract(make_store(clock=clock), clock)


async def test_async_sweep_contract(make_store: Callable[..., SQLAlchemyStore]) -> None:
    clock = ManualClock()
    await check_async_sweep_contract(make_store(clock=clock), clock)


def test_pending_revocations_queue(store: SQLAlchemyStore) -> None:
    store.add_pending(token(value="first"), "ERROR_PROVIDER_UNAVAILABLE")
    store.add_pending(token(value="second"), "ERROR_PROVIDER_UNAVAILABLE")
    assert store.count_pending() == 2
    first, _ = store.pending()
    assert (first.token.value, first.attempts) == ("first", 1)
    assert [e.token.value for e in store.pending(limit=1)] == ["first"]
    store.retry_failed(first, "M_UNKNOWN")
    again = store.pending()
    assert (again[0].attempts, again[0].last_error) == (2, "M_UNKNOWN")
    store.remove_pending(again[0])
    assert [e.token.value for e in store.pending()] == ["second"]
    assert store.count_pending() == 1


async def test_async_twins(store: SQLAlchemyStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    await store.aset(key, token(value="async-1"))
    assert (await store.aget(key)).value == "async-1"  # type: ignore[union-attr]
    async with store.alock(key):
        assert not await store._atry_lock(key, "other", 30)
    assert await store.acount_pending() == 0


def test_an_unreachable_database_is_store_unavailable() -> None:
    with refused_port() as port:
        url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/db"
        with pytest.raises(StoreUnavailableError) as info:
            SQLAlchemyStore.from_url(url, connect_args={"connect_timeout": 5})
    assert info.value.code == "ERROR_STORE_UNAVAILABLE"
    assert PASSWORD not in str(info.value)


def test_urls_and_settings(db_url: str) -> None:
    chat = from_settings(
        {
            "PROVIDER": "jwt",
            "JWT_SECRET": "settings-secret-0123456789abcdef",
            "STORE": db_url,
            "STORE_ENCRYPTION_KEY": generate_key(),
        }
    )
    assert isinstance(chat.store, SQLAlchemyStore)
    session = chat.get_session(ChatIdentity("alice"), "s")
    assert chat.get_session(ChatIdentity("alice"), "s").token == session.token
    chat.close()

    for bad in (
        f"postgresql+nosuchdriver://u:{PASSWORD}@h/db",
        f"postgresql://u:{PASSWORD}@h:x/db",
    ):
        with pytest.raises(ConfigurationError) as info:
            store_from_url(bad)
        assert info.value.setting == "STORE"
        assert PASSWORD not in str(info.value)
    engine = sa.create_engine(f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1/db")
    quiet = SQLAlchemyStore(engine, create_tables=False)  # connects to nothing
    assert repr(quiet) == "<SQLAlchemyStore 'postgresql+psycopg://u:***@127.0.0.1/db'>"
    quiet.close()


# -- cross-process single-flight --------------------------------------------------------------
OTHERS_TIMEOUT = 60.0


class ObservedSQLStore(SQLAlchemyStore):
    """Releases ``contended`` (a process-shared semaphore) the first time it finds the issue
    lock taken."""

    contended: Any = None
    _signalled = False

    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        taken = super()._try_lock(key, owner, ttl)
        if not taken and not self._signalled:
            self._signalled = True
            self.contended.release()
        return taken


def _race(url: str, count_file: str, contended: Any) -> None:
    """One worker process: 25 threads ask for alice's token at once. Whichever process issues
    holds its provider call open until it has seen the three others find the lock taken."""

    def handle(request: httpx.Request) -> httpx.Response:
        for seen in range(3):
            assert contended.acquire(timeout=OTHERS_TIMEOUT), f"{seen}/3 others seen waiting"
        return httpx.Response(204)

    store = ObservedSQLStore.from_url(url)
    store.contended = contended
    chat = ChatAuth(
        GatedProvider(count_file=count_file), store, transport=httpx.MockTransport(handle)
    )
    values: list[str] = []

    def one() -> None:
        values.append(chat.get_session(ChatIdentity("alice"), "s").token.value)

    threads = [threading.Thread(target=one) for _ in range(25)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chat.close()
    with open(count_file + ".values", "a") as out:
        out.write("".join(v + "\n" for v in values))


def test_four_processes_issue_one_token(
    store: SQLAlchemyStore, db_url: str, tmp_path: Path
) -> None:
    ctx = multiprocessing.get_context("spawn")
    contended = ctx.Semaphore(0)
    count_file = str(tmp_path / "issued")
    procs = [ctx.Process(target=_race, args=(db_url, count_file, contended)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(Path(count_file).read_text().splitlines()) == 1
    values = Path(count_file + ".values").read_text().splitlines()
    assert len(values) == 100
    assert len(set(values)) == 1
    assert store.get(SessionKey("jwt", "alice", "s")).value == values[0]  # type: ignore[union-attr]
    if store.advisory:
        assert isinstance(advisory_lock_id(SessionKey("jwt", "alice", "s")), int)


def test_the_async_path_shares_the_lock(store: SQLAlchemyStore) -> None:
    async def main() -> set[str]:
        chat = ChatAuth(CountingProvider(), store)
        found = await asyncio.gather(
            *(chat.aget_session(ChatIdentity("bob"), "s") for _ in range(10))
        )
        return {s.token.value for s in found}

    assert len(asyncio.run(main())) == 1
