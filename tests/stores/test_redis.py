"""RedisStore against real Redis servers: one redis-server, a 6-node Redis Cluster and a
Sentinel-watched primary/replica (the ``redis_server``, ``redis_cluster`` and
``redis_sentinel`` fixtures). Tests that take ``make_store``/``store``/``topology`` run on all
three; the rest (outages, URL forms, unix sockets) on the single server."""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import redis.asyncio
import redis.asyncio.cluster
from redis.crc import key_slot

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, StoreUnavailableError
from chatauth.config import from_settings
from chatauth.responses import error_answer
from chatauth.stores.base import LockTimeoutError
from chatauth.stores.crypto import FernetCipher, generate_key
from chatauth.stores.redis import RedisStore
from chatauth.stores.redis_topologies import RedisClusterStore, RedisSentinelStore
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken, SessionKey, utcnow
from tests.core.providers import GATE_TIMEOUT, Gate, GatedProvider
from tests.servers.redis import RedisServer
from tests.stores.sweep_contract import check_async_sweep_contract, check_sweep_contract

pytestmark = pytest.mark.redis

SECRET_VALUE = "tok-secret-value-0123456789"


def token(uid: str = "alice", *, ttl: float | None = 3600, value: str = SECRET_VALUE) -> ChatToken:
    now = utcnow()
    return ChatToken(
        value=value,
        uid=uid,
        provider="matrix",
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl) if ttl is not None else None,
        refresh_at=now + timedelta(seconds=600),
        data={"device_id": "DEV"},
        public=("device_id",),
    )


def wipe(store: RedisStore) -> None:
    keys = list(store.client.scan_iter(match=f"{store.prefix}:*"))
    if keys:
        store.client.delete(*keys)


@dataclass(frozen=True)
class Topology:
    """One way to run Redis: its store URL and the store class that URL builds."""

    name: str
    url: str
    store_class: type[RedisStore]

    def with_prefix(self, prefix: str) -> str:
        """The store URL with ``?key_prefix=<prefix>`` (for subprocesses and settings)."""
        return f"{self.url}{'&' if '?' in self.url else '?'}key_prefix={prefix}"


TOPOLOGIES = {
    "single": ("redis_server", RedisStore),
    "cluster": ("redis_cluster", RedisClusterStore),
    "sentinel": ("redis_sentinel", RedisSentinelStore),
}


@pytest.fixture(params=list(TOPOLOGIES))
def topology(request: pytest.FixtureRequest) -> Topology:
    """The shared single server, cluster or sentinel set (only the one asked for starts)."""
    fixture, store_class = TOPOLOGIES[request.param]
    return Topology(request.param, request.getfixturevalue(fixture).url, store_class)


@pytest.fixture
def make_store(topology: Topology) -> Iterator[Callable[..., RedisStore]]:
    """Stores on the shared server/cluster/sentinel set, each test under its own key prefix.

    ``make_store(ObservedRedisStore, ...)`` gives the observed twin of the topology's class.
    """
    prefix = f"test-{secrets.token_hex(4)}"
    made: list[RedisStore] = []

    def make(store_class: type[RedisStore] = RedisStore, **kwargs: Any) -> RedisStore:
        observed = issubclass(store_class, ObservedRedisStore)
        cls = OBSERVED[topology.name] if observed else topology.store_class
        store = cls.from_url(topology.url, prefix=prefix, **kwargs)
        made.append(store)
        return store

    yield make
    if made:
        wipe(made[0])
    for store in made:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., RedisStore], topology: Topology) -> RedisStore:
    made = make_store()
    assert type(made) is topology.store_class
    return made


class ObservedRedisStore(RedisStore):
    """A RedisStore that says when a caller found the issue lock taken (and so polls it):
    it sets :attr:`contended` and calls :attr:`on_contended`, if set, on every such try.
    (Its cluster and sentinel twins below share the methods.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contended = threading.Event()
        self.on_contended: Callable[[], None] | None = None

    def _saw(self, taken: bool) -> bool:
        if not taken:
            self.contended.set()
            if self.on_contended is not None:
                self.on_contended()
        return taken

    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        return self._saw(super()._try_lock(key, owner, ttl))

    async def _atry_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        return self._saw(await super()._atry_lock(key, owner, ttl))


class ObservedClusterStore(ObservedRedisStore, RedisClusterStore):
    pass


class ObservedSentinelStore(ObservedRedisStore, RedisSentinelStore):
    pass


OBSERVED: dict[str, type[ObservedRedisStore]] = {
    "single": ObservedRedisStore,
    "cluster": ObservedClusterStore,
    "sentinel": ObservedSentinelStore,
}


# -- tokens ------------------------------------------------------------------------------------
def test_round_trip_and_ttl_follows_the_token_expiry(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice", "app-session-1")
    stored = token(ttl=120)
    store.set(key, stored)
    loaded = store.get(key)
    assert loaded == stored
    pttl = store.client.pttl(store.token_key(key))
    assert 110_000 < pttl <= 120_000
    assert store.get(SessionKey("matrix", "alice", "other")) is None


def test_a_never_expiring_token_is_kept_retention_past_its_refresh(
    make_store: Callable[..., RedisStore],
) -> None:
    store = make_store(retention=3600)
    key = SessionKey("matrix", "alice", "s")
    store.set(key, token(ttl=None))  # refresh_at is 600 s away
    pttl = store.client.pttl(store.token_key(key))
    assert 4_100_000 < pttl <= 4_200_000


def test_a_token_key_lives_as_long_as_the_token_by_the_store_clock(
    make_store: Callable[..., RedisStore],
) -> None:
    stored = token(ttl=120)  # expires 120 s after the real now
    # The clock starts after the token was made (not before, then the milliseconds spent
    # between the two would be added to the 20 s below).
    clock = ManualClock()
    store = make_store(clock=clock)
    key = SessionKey("matrix", "alice", "s")
    clock.advance(100)  # by the store's clock only 20 s are left
    store.set(key, stored)
    assert 10_000 < store.client.pttl(store.token_key(key)) <= 20_000

    clock.advance(20)  # expired by the store's clock: Redis keeps it one millisecond at most
    store.set(key, stored)
    assert store.client.pttl(store.token_key(key)) <= 1  # -2 once Redis has dropped it


def expire_now(store: RedisStore, name: str) -> None:
    """End a key's life as Redis does when its clock passes the key's expiry.

    Redis expires keys by the server's own clock, which a test cannot move; the key's
    lifetime itself is asserted by the tests above from the store's clock.
    """
    assert store.client.pttl(name) > 0, "the key had no expiry to reach"
    store.client.delete(name)


def test_expired_tokens_disappear(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    store.set(key, token(ttl=60))
    expire_now(store, store.token_key(key))
    assert store.get(key) is None
    assert store.sessions("matrix", "alice") == []
    assert store.pop(key) is None


def test_key_names_hold_no_uid_session_id_or_token(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice-uid", "app-session-secret")
    store.set(key, token("alice-uid"))
    with store.lock(key):
        names = [k.decode() for k in store.client.scan_iter(match=f"{store.prefix}:*")]
    # The sweep's two indexes (one sorted set each per provider, members are token key
    # names) and, per user: the token, the user's session set, the lock.
    indexes = {store.served_key("matrix"), store.usable_key("matrix")}
    assert indexes <= set(names)
    assert len(names) == 5
    members = [m.decode() for i in indexes for m in store.client.zrange(i, 0, -1)]
    assert members == [store.token_key(key)] * 2
    for name in [*(n for n in names if n not in indexes), *members]:
        assert "alice" not in name
        assert "app-session" not in name
        assert SECRET_VALUE not in name
        assert key.user_digest in name


def test_every_key_of_one_user_is_in_one_cluster_slot(store: RedisStore) -> None:
    a1, a2 = SessionKey("matrix", "alice", "s1"), SessionKey("matrix", "alice", "s2")
    slots = {
        key_slot(name.encode())
        for name in (
            store.token_key(a1),
            store.token_key(a2),
            store.lock_key(a1),
            store.sessions_key(a1.user_digest),
        )
    }
    assert len(slots) == 1
    bob = SessionKey("matrix", "bob", "s1")
    assert key_slot(store.token_key(bob).encode()) not in slots


def test_without_a_cipher_payloads_are_json_and_with_one_encrypted(
    make_store: Callable[..., RedisStore],
) -> None:
    key = SessionKey("matrix", "alice", "s")
    plain = make_store()
    plain.set(key, token())
    assert json.loads(plain.client.get(plain.token_key(key)))["value"] == SECRET_VALUE

    secret_key = generate_key()
    encrypted = make_store(cipher=FernetCipher(secret_key))
    encrypted.set(key, token())
    raw = encrypted.client.get(encrypted.token_key(key))
    assert SECRET_VALUE.encode() not in raw
    assert json.loads(FernetCipher(secret_key).decrypt(raw))["value"] == SECRET_VALUE
    assert encrypted.get(key).value == SECRET_VALUE  # type: ignore[union-attr]


def test_a_wrong_key_is_a_clear_configuration_error(make_store: Callable[..., RedisStore]) -> None:
    key = SessionKey("matrix", "alice", "s")
    make_store(cipher=FernetCipher(generate_key())).set(key, token())
    with pytest.raises(ConfigurationError) as info:
        make_store(cipher=FernetCipher(generate_key())).get(key)
    assert info.value.setting == "STORE_ENCRYPTION_KEY"
    assert "cannot be decrypted" in info.value.message
    assert SECRET_VALUE not in str(info.value)


def test_pop_and_pop_user(store: RedisStore) -> None:
    a1, a2 = SessionKey("matrix", "alice", "s1"), SessionKey("matrix", "alice", "s2")
    bob = SessionKey("matrix", "bob", "s1")
    store.set(a1, token("alice", value="a1"))
    store.set(a2, token("alice", value="a2"))
    store.set(bob, token("bob", value="b1"))

    assert store.pop(a1).value == "a1"  # type: ignore[union-attr]
    assert store.pop(a1) is None
    assert [t.value for t in store.sessions("matrix", "alice")] == ["a2"]

    store.set(a1, token("alice", value="a1-again"))
    popped = store.pop_user("matrix", "alice")
    assert sorted(t.value for t in popped) == ["a1-again", "a2"]
    assert store.pop_user("matrix", "alice") == []
    assert store.get(a2) is None
    assert not store.client.exists(store.sessions_key(a1.user_digest))
    assert [t.value for t in store.sessions()] == ["b1"]
    assert [t.value for t in store.sessions(uid="bob")] == ["b1"]
    assert store.sessions(provider="stream") == []


def test_pop_user_skips_sessions_whose_token_expired(store: RedisStore) -> None:
    short, long = SessionKey("matrix", "alice", "s1"), SessionKey("matrix", "alice", "s2")
    store.set(short, token(ttl=60, value="short"))
    store.set(long, token(value="long"))
    expire_now(store, store.token_key(short))  # its member stays in the user's session set
    assert store.client.scard(store.sessions_key(short.user_digest)) == 2
    assert [t.value for t in store.pop_user("matrix", "alice")] == ["long"]


# -- the issue lock -------------------------------------------------------------------------
def test_lock_is_exclusive_and_released_only_by_its_owner(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    assert store._try_lock(key, "owner-a", 30)
    assert not store._try_lock(key, "owner-b", 30)
    store._unlock(key, "owner-b")  # not the holder: must not release
    assert not store._try_lock(key, "owner-b", 30)
    store._unlock(key, "owner-a")
    assert store._try_lock(key, "owner-b", 30)
    with pytest.raises(LockTimeoutError), store.lock(key, ttl=30, wait=0):
        pass
    store._unlock(key, "owner-b")
    with store.lock(key, ttl=30, wait=0):
        assert store.client.exists(store.lock_key(key))
    assert not store.client.exists(store.lock_key(key))


HOLDER = """
import signal, sys
from chatauth.config import store_from_url
from chatauth.tokens import SessionKey
store = store_from_url(sys.argv[1])
assert store._try_lock(SessionKey("matrix", "alice", "s"), "crashed-holder", float(sys.argv[2]))
print("locked", flush=True)
signal.pause()  # hold the lock until the test kills this process
"""


def test_a_crashed_holders_lock_expires(store: RedisStore, topology: Topology) -> None:
    key = SessionKey("matrix", "alice", "s")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, topology.with_prefix(store.prefix), "600"],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"locked"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert not store._try_lock(key, "me", 30)  # the dead process still holds it...
    assert 0 < store.client.pttl(store.lock_key(key)) <= 600_000  # ...for its ttl at most
    # Redis's clock reaching the lock's expiry (a test cannot move it) looks the same as:
    store.client.pexpire(store.lock_key(key), 1)
    with store.lock(key, ttl=30, wait=30):  # the waiter polls until Redis has expired it
        assert store.client.get(store.lock_key(key)) != b"crashed-holder"


def test_a_lock_wait_runs_out_by_the_store_clock(make_store: Callable[..., RedisStore]) -> None:
    clock = ManualClock()
    waiter = make_store(ObservedRedisStore, clock=clock)
    key = SessionKey("matrix", "alice", "s")
    assert make_store()._try_lock(key, "slow-holder", 600)  # another worker, still alive
    outcome: list[BaseException] = []

    def wait_for_the_lock() -> None:
        try:
            with waiter.lock(key, ttl=30, wait=5):
                pass
        except LockTimeoutError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=wait_for_the_lock)
    thread.start()
    assert waiter.contended.wait(GATE_TIMEOUT)  # it found the lock taken and polls it
    clock.advance(4)
    assert thread.is_alive() and outcome == []
    clock.advance(1)  # its 5 s of waiting are over by its own clock
    thread.join(GATE_TIMEOUT)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], LockTimeoutError)
    # The holder's lock is Redis's to expire: moving the store's clock did not touch it.
    assert waiter.client.get(waiter.lock_key(key)) == b"slow-holder"


# -- pending revocations -------------------------------------------------------------------
def test_pending_revocations_queue(store: RedisStore) -> None:
    store.add_pending(token(value="first"), "ERROR_PROVIDER_UNAVAILABLE")
    store.add_pending(token(value="second"), "ERROR_PROVIDER_UNAVAILABLE")
    assert store.count_pending() == 2
    first, _second = store.pending()
    assert (first.token.value, first.attempts, first.last_error) == (
        "first",
        1,
        "ERROR_PROVIDER_UNAVAILABLE",
    )
    assert [e.token.value for e in store.pending(limit=1)] == ["first"]

    store.retry_failed(first, "M_UNKNOWN")  # goes to the back, one more attempt
    again = store.pending()
    assert [e.token.value for e in again] == ["second", "first"]
    assert (again[1].attempts, again[1].last_error) == (2, "M_UNKNOWN")
    assert again[1].created_at == first.created_at

    store.remove_pending(again[0])
    store.retry_failed(again[0], "X")  # removed meanwhile by another drainer: not re-added
    assert [e.token.value for e in store.pending()] == ["first"]
    assert store.count_pending() == 1


def test_queued_revocations_are_dated_by_the_store_clock(
    make_store: Callable[..., RedisStore],
) -> None:
    clock = ManualClock(start=1_800_000_000)
    store = make_store(clock=clock)
    store.add_pending(token(), "ERROR_PROVIDER_UNAVAILABLE")
    clock.advance(3600)
    (entry,) = store.pending()
    assert entry.created_at.timestamp() == 1_800_000_000
    store.retry_failed(entry, "M_UNKNOWN")  # a retry keeps the first date
    assert store.pending()[0].created_at == entry.created_at


def test_pending_payloads_are_encrypted_too(make_store: Callable[..., RedisStore]) -> None:
    store = make_store(cipher=FernetCipher(generate_key()))
    store.add_pending(token(), "ERROR_PROVIDER_UNAVAILABLE")
    (_entry_id, fields), *_ = store.client.xrange(store.pending_key)
    assert SECRET_VALUE.encode() not in fields[b"token"]
    assert store.pending()[0].token.value == SECRET_VALUE


# -- Redis down ----------------------------------------------------------------------------
def test_redis_down_is_store_unavailable_and_recovers(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    store = RedisStore.from_url(server.url)
    key = SessionKey("matrix", "alice", "s")
    store.set(key, token())
    server.stop()
    calls: list[Callable[[], object]] = [
        lambda: store.get(key),
        lambda: store.set(key, token()),
        lambda: store.pop(key),
        lambda: store.pop_user("matrix", "alice"),
        lambda: store.sessions(),
        lambda: store._try_lock(key, "o", 1),
        lambda: store._unlock(key, "o"),
        lambda: store.add_pending(token(), "E"),
        lambda: store.pending(),
        lambda: store.count_pending(),
        lambda: store.ping(),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as info:
            call()
        assert info.value.code == "ERROR_STORE_UNAVAILABLE"
        assert SECRET_VALUE not in str(info.value)
    status, body, headers = error_answer(info.value)
    assert status == 503
    assert headers["Retry-After"] == "1"
    assert body["error"]["code"] == "ERROR_STORE_UNAVAILABLE"

    server.start()  # empty again (no persistence); the pooled connections reconnect
    assert store.get(key) is None
    store.set(key, token())
    assert store.get(key).value == SECRET_VALUE  # type: ignore[union-attr]
    store.close()


async def test_redis_down_is_store_unavailable_async(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    store = RedisStore.from_url(server.url)
    key = SessionKey("matrix", "alice", "s")
    await store.aset(key, token())
    server.stop()
    with pytest.raises(StoreUnavailableError):
        await store.aget(key)
    with pytest.raises(StoreUnavailableError):
        async with store.alock(key):
            pass
    with pytest.raises(StoreUnavailableError):
        await store.acount_pending()
    server.start()
    assert await store.aget(key) is None
    await store.aclose()


# -- async twins ---------------------------------------------------------------------------
async def test_async_twins_use_redis_asyncio(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    await store.aset(key, token(value="async-1"))
    client, _ = store._async[asyncio.get_running_loop()]
    assert isinstance(client, redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster)
    assert (await store.aget(key)).value == "async-1"  # type: ignore[union-attr]
    assert store.get(key).value == "async-1"  # type: ignore[union-attr]
    await store.aset(SessionKey("matrix", "alice", "s2"), token(value="async-2"))
    assert (await store.apop(key)).value == "async-1"  # type: ignore[union-attr]
    assert [t.value for t in await store.apop_user("matrix", "alice")] == ["async-2"]

    async with store.alock(key, ttl=30):
        assert not await store._atry_lock(key, "other", 30)
    assert await store._atry_lock(key, "other", 30)
    await store._aunlock(key, "other")

    await store.aadd_pending(token(value="p1"), "E1")
    (entry,) = await store.apending()
    await store.aretry_failed(entry, "E2")
    (entry,) = await store.apending()
    assert (entry.attempts, entry.last_error) == (2, "E2")
    assert await store.acount_pending() == 1
    await store.aremove_pending(entry)
    assert await store.acount_pending() == 0
    assert await store.aping()
    await store.aclose()


@pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)
def test_clients_of_finished_event_loops_are_dropped(store: RedisStore) -> None:
    # Apps that run one loop per call (asgiref's async_to_sync in a sync Django) never aclose.
    key = SessionKey("matrix", "alice", "s")
    store.set(key, token())
    for _ in range(3):
        assert asyncio.run(store.aget(key)).value == SECRET_VALUE  # type: ignore[union-attr]
    assert len(store._async) == 1
    # Their sockets close when collected (with a ResourceWarning, ignored here): collect now,
    # inside this test's warning filters.
    store._async.clear()
    gc.collect()


async def test_concurrent_tasks_share_one_issue_call(store: RedisStore) -> None:
    gate = Gate()
    chat = ChatAuth(GatedProvider(), store, transport=gate.async_transport())
    waiters: list[str] = []
    all_waiting = asyncio.Event()

    def saw_wait(key: str) -> None:
        waiters.append(key)
        if len(waiters) == 39:
            all_waiting.set()

    chat._async_locks().on_wait = saw_wait
    first = asyncio.create_task(chat.aget_session(ChatIdentity("alice"), "s"))
    await gate.aentered()  # the first task holds the Redis lock, inside the provider call
    others = [asyncio.create_task(chat.aget_session(ChatIdentity("alice"), "s")) for _ in range(39)]
    await asyncio.wait_for(all_waiting.wait(), GATE_TIMEOUT)
    assert not any(t.done() for t in [first, *others])
    gate.open()
    sessions = await asyncio.gather(first, *others)
    assert len({s.token.value for s in sessions}) == 1
    assert chat.provider.issued == 1  # type: ignore[attr-defined]
    await chat.aclose()


# -- cross-process single-flight ------------------------------------------------------------
# Two services on one Redis stand for two worker processes: each has its own in-process locks,
# so only the store's lock in Redis keeps the second from issuing a second token.
def test_two_workers_on_one_redis_issue_one_token(make_store: Callable[..., RedisStore]) -> None:
    gate, provider = Gate(), GatedProvider()
    first = ChatAuth(provider, make_store(), transport=gate.transport())
    observed = make_store(ObservedRedisStore)
    second = ChatAuth(provider, observed, transport=gate.transport())
    values: dict[str, str] = {}

    def worker(name: str, chat: ChatAuth) -> None:
        values[name] = chat.get_session(ChatIdentity("alice"), "s").token.value

    one = threading.Thread(target=worker, args=("first", first))
    one.start()
    assert gate.entered.wait(GATE_TIMEOUT)  # the first worker holds the lock in Redis
    two = threading.Thread(target=worker, args=("second", second))
    two.start()
    assert observed.contended.wait(GATE_TIMEOUT)  # the second found it taken and polls it
    assert two.is_alive() and values == {}
    gate.open()
    one.join(GATE_TIMEOUT)
    two.join(GATE_TIMEOUT)
    assert values["first"] == values["second"]
    assert provider.issued == 1 and gate.requests == 1
    first.close()
    second.close()


async def test_two_async_workers_on_one_redis_issue_one_token(
    make_store: Callable[..., RedisStore],
) -> None:
    gate, provider = Gate(), GatedProvider()
    first = ChatAuth(provider, make_store(), transport=gate.async_transport())
    observed = make_store(ObservedRedisStore)
    second = ChatAuth(provider, observed, transport=gate.async_transport())
    one = asyncio.create_task(first.aget_session(ChatIdentity("alice"), "s"))
    await gate.aentered()
    two = asyncio.create_task(second.aget_session(ChatIdentity("alice"), "s"))
    assert await asyncio.to_thread(observed.contended.wait, GATE_TIMEOUT)
    assert not one.done() and not two.done()
    gate.open()
    sessions = await asyncio.gather(one, two)
    assert sessions[0].token == sessions[1].token
    assert provider.issued == 1
    await first.aclose()
    await second.aclose()


#: How long the issuing process waits for the other three to be seen waiting (seconds).
OTHERS_TIMEOUT = 60.0


def _race(
    topology: str, url: str, prefix: str, count_file: str, contended: Any, use_async: bool
) -> None:
    """One worker process: 25 threads or tasks ask for alice's token at once.

    Its store releases ``contended`` (a process-shared semaphore) once, the first time it
    finds the issue lock in Redis taken. Whichever process issues holds its provider call
    open until it has seen the three others do so: the token cannot exist before every
    process has raced for it.
    """

    def others_waiting() -> None:
        for seen in range(3):
            assert contended.acquire(timeout=OTHERS_TIMEOUT), f"{seen}/3 others seen waiting"

    def handle(request: httpx.Request) -> httpx.Response:
        others_waiting()
        return httpx.Response(204)

    async def ahandle(request: httpx.Request) -> httpx.Response:
        await asyncio.to_thread(others_waiting)
        return httpx.Response(204)

    store = OBSERVED[topology].from_url(url, prefix=prefix)
    signalled = threading.Lock()

    def signal_once() -> None:
        if signalled.acquire(blocking=False):
            contended.release()

    store.on_contended = signal_once
    chat = ChatAuth(
        GatedProvider(count_file=count_file),
        store,
        transport=httpx.MockTransport(ahandle if use_async else handle),
    )
    values: list[str] = []
    if use_async:

        async def main() -> None:
            found = await asyncio.gather(
                *(chat.aget_session(ChatIdentity("alice"), "s") for _ in range(25))
            )
            values.extend(s.token.value for s in found)
            await chat.aclose()

        asyncio.run(main())
    else:

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


@pytest.mark.parametrize("use_async", [False, True], ids=["threads", "asyncio"])
def test_four_processes_issue_one_token(
    store: RedisStore, topology: Topology, tmp_path: Path, use_async: bool
) -> None:
    ctx = multiprocessing.get_context("spawn")
    contended = ctx.Semaphore(0)
    count_file = str(tmp_path / "issued")
    procs = [
        ctx.Process(
            target=_race,
            args=(topology.name, topology.url, store.prefix, count_file, contended, use_async),
        )
        for _ in range(4)
    ]
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


# -- URLs and settings ---------------------------------------------------------------------
def test_from_url_forms(redis_server: RedisServer) -> None:
    store = RedisStore.from_url(redis_server.url + "?key_prefix=myapp&socket_timeout=3")
    assert store.prefix == "myapp"
    assert store.token_key(SessionKey("p", "u")).startswith("myapp:{")
    assert store.client.connection_pool.connection_kwargs["socket_timeout"] == 3
    assert store.ping()
    store.close()

    tls = RedisStore.from_url("rediss://:hunter2@redis.example.org:6380/0")
    assert issubclass(tls.client.connection_pool.connection_class, redis.SSLConnection)
    assert "hunter2" not in repr(tls)

    with pytest.raises(ConfigurationError) as info:
        RedisStore.from_url("redis://:hunter2@127.0.0.1:6379/0?socket_timeout=abc")
    assert info.value.setting == "STORE"
    assert "hunter2" not in str(info.value)


def test_unix_socket_url(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    server = subprocess.Popen(
        [
            RedisServer().binary,
            "--port",
            "0",
            "--unixsocket",
            str(sock),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        store = RedisStore.from_url(f"unix://{sock}?db=0")
        deadline = time.monotonic() + 20
        while True:
            try:
                store.ping()
                break
            except StoreUnavailableError:
                assert time.monotonic() < deadline, "redis-server did not open its socket"
                time.sleep(0.05)
        key = SessionKey("matrix", "alice", "s")
        store.set(key, token())
        assert store.get(key).value == SECRET_VALUE  # type: ignore[union-attr]
        store.close()
    finally:
        server.terminate()
        server.wait(10)


def test_settings_build_an_encrypted_redis_store(topology: Topology) -> None:
    chat = from_settings(
        {
            "PROVIDER": "jwt",
            "JWT_SECRET": "settings-secret-0123456789abcdef",
            "STORE": topology.with_prefix("settings-test"),
            "STORE_ENCRYPTION_KEY": generate_key(),
        }
    )
    assert type(chat.store) is topology.store_class
    assert isinstance(chat.store.cipher, FernetCipher)
    session = chat.get_session(ChatIdentity("alice"), "s")
    assert chat.get_session(ChatIdentity("alice"), "s").token == session.token
    raw = chat.store.client.get(chat.store.token_key(SessionKey("jwt", "alice", "s")))
    assert session.token.value.encode() not in raw
    wipe(chat.store)
    chat.close()


def test_sweep_contract(make_store: Callable[..., RedisStore]) -> None:
    clock = ManualClock()
    check_sweep_contract(make_store(clock=clock), clock)


async def test_async_sweep_contract(make_store: Callable[..., RedisStore]) -> None:
    clock = ManualClock()
    store = make_store(clock=clock)
    await check_async_sweep_contract(store, clock)
    await store.aclose()


def test_sweep_drops_index_entries_whose_token_key_expired(store: RedisStore) -> None:
    key = SessionKey("matrix", "alice", "s")
    store.set(key, token(ttl=60))
    expire_now(store, store.token_key(key))
    now = datetime.now(timezone.utc) + timedelta(days=30)
    assert store.sweep("matrix", now=now, idle_before=now) == []
    assert store.client.zcard(store.served_key("matrix")) == 0
    assert store.client.zcard(store.usable_key("matrix")) == 0
