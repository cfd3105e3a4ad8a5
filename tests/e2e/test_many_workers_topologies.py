"""Many processes on a Redis Cluster and on a Sentinel-watched Redis (issue 16): a real
``uvicorn --workers 4`` app, real Redis processes and the CometChat emulator over loopback.

- 4 workers x 250 concurrent first requests for one user -> exactly one issue call, on the
  6-node cluster and on primary + replica + 3 sentinels;
- failover while requests flow: the primary serving the users' slot (cluster) or the
  Sentinel primary is SIGKILLed. Token requests answer 200 with the user's own token or 503 +
  ``Retry-After`` (never a 500, never another user's token); once the servers report the
  promotion, every session gets its one token again (the one it had: 0 tokens lost) and the
  queued revocations are all still queued (AOF on, ``appendfsync always``).

The failover tests wait on the servers' own state (``CLUSTER INFO``, ``SENTINEL
get-master-addr-by-name``), then on the app answering 200 again; no fixed sleeps. The figures
(503s answered, for how long, tokens and revocations lost) are printed for the closing note.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis

from chatauth import ChatAuth, ChatIdentity
from chatauth.config import store_from_url
from chatauth.stores.redis import RedisStore
from chatauth.testing.cometchat import CometChatEmulator
from chatauth.tokens import SessionKey
from tests.core.providers import CountingProvider
from tests.e2e.test_many_workers import (
    API_KEY,
    HOLD_DEADLINE,
    REQUESTS_PER_WORKER,
    WORKERS,
    WorkerServer,
    burst_through_gate,
    chatauth_env,
    issue_calls,
)
from tests.servers.deadlines import REQUEST_DEADLINE, STARTUP_DEADLINE
from tests.servers.redis import RedisServer
from tests.servers.redis_cluster import RedisCluster
from tests.servers.redis_sentinel import RedisSentinel

pytestmark = pytest.mark.redis

USERS = ("alice", "bob", "carol")
#: How long the app may take to answer 200 again once the servers report the promotion
#: (redis-py re-reads the layout / asks the sentinels on the next failed command).
RECOVERY_TIMEOUT = REQUEST_DEADLINE


@pytest.fixture
def emulator(serve_emulator: Callable[[CometChatEmulator], CometChatEmulator]) -> CometChatEmulator:
    return serve_emulator(CometChatEmulator(api_key=API_KEY))


def with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}key_prefix={prefix}"


# -- single-flight across processes ----------------------------------------------------------
@pytest.mark.parametrize("topology", ["redis_cluster", "redis_sentinel"])
def test_four_workers_times_250_first_requests_make_one_issue_call(
    topology: str,
    request: pytest.FixtureRequest,
    emulator: CometChatEmulator,
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As tests/e2e/test_many_workers.py's test on one redis-server: the issue call is held
    at the provider until the workers are seen with requests in flight (counted in the plain
    ``redis_server``, a side channel), so the race is made to happen."""
    servers = request.getfixturevalue(topology)
    prefix = f"workers-{os.getpid()}-{secrets.token_hex(4)}"
    arrivals_key = f"{prefix}:arrivals"
    env = {
        **chatauth_env(emulator, with_prefix(servers.url, prefix)),
        "MANY_WORKERS_ARRIVALS": redis_server.url,
        "MANY_WORKERS_ARRIVALS_KEY": arrivals_key,
    }
    gate = emulator.faults.hold(method="POST", path="/v3/users", hang=HOLD_DEADLINE + 10)
    counts = redis.Redis.from_url(
        redis_server.url, socket_timeout=REQUEST_DEADLINE, decode_responses=True
    )

    def arrivals() -> dict[str, int]:
        return {str(k): int(v) for k, v in counts.hgetall(arrivals_key).items()}

    count = WORKERS * REQUESTS_PER_WORKER
    try:
        with WorkerServer(env, tmp_path / "uvicorn.log") as server:
            before = len(emulator.calls)
            try:
                result = asyncio.run(burst_through_gate(server.url, count, gate, arrivals))
            finally:
                gate.release()
            responses = result.responses
            bad = [r.json() for r in responses if r.status_code != 200][:3]
            assert [r.status_code for r in responses] == [200] * len(responses), bad
    finally:
        counts.delete(arrivals_key)
        counts.close()

    assert result.held, "the issue call never reached the provider"
    waiting = {pid: n for pid, n in result.arrivals.items() if n > 0}
    assert len(waiting) >= 2, result.arrivals  # several processes had requests in flight
    assert min(result.finished_at) >= result.released_at
    tokens = {r.json()["token"] for r in responses}
    by_worker = collections.Counter(r.headers["x-worker-pid"] for r in responses)
    assert len(tokens) == 1
    assert issue_calls(emulator) == 1
    assert gate.count == 1
    assert emulator.calls[before:].count(("GET", "/v3/users/alice")) == 1
    assert emulator.tokens_of("alice") == list(tokens)
    assert len(by_worker) == WORKERS, by_worker
    with capsys.disabled():
        print(
            f"\n[issue 16] {topology}: {len(responses)} concurrent first requests over "
            f"{len(by_worker)} workers; {sum(waiting.values())} waiting in {len(waiting)} "
            f"workers while the issue call was held: {issue_calls(emulator)} issue call(s)"
        )


# -- failover ------------------------------------------------------------------------------
@dataclasses.dataclass
class Answer:
    at: float  # time.monotonic() when the answer arrived
    user: str
    status: int
    token: str | None
    retry_after: str | None


@dataclasses.dataclass
class FailoverRun:
    before: dict[str, str]  # user -> token before the kill
    answers: list[Answer]
    killed_at: float
    promoted_at: float
    recovered_at: float
    after: dict[str, set[str]]  # user -> tokens answered by a burst after recovery


def run_failover(
    server: WorkerServer,
    kill: Callable[[], None],
    wait_promoted: Callable[[], None],
    users: tuple[str, ...],
) -> FailoverRun:
    """Loaders ask for the users' tokens while ``kill`` runs; then wait for the promotion
    (``wait_promoted`` polls the servers), then for every user to get a 200 again."""
    answers: list[Answer] = []
    marks: dict[str, float] = {}

    async def main() -> FailoverRun:
        flowing = asyncio.Event()
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=server.url, limits=limits, timeout=REQUEST_DEADLINE
        ) as client:

            async def ask(user: str) -> Answer:
                r = await client.get("/chat/token", headers={"X-Test-User": user})
                answer = Answer(
                    time.monotonic(),
                    user,
                    r.status_code,
                    r.json().get("token") if r.status_code == 200 else None,
                    r.headers.get("retry-after"),
                )
                answers.append(answer)
                if len(answers) >= 30:
                    flowing.set()
                return answer

            before = {u: (await ask(u)).token for u in users}
            assert None not in before.values(), answers
            stop = asyncio.Event()

            async def load(user: str) -> None:
                while not stop.is_set():
                    await ask(user)

            loaders = [asyncio.create_task(load(u)) for u in users for _ in range(2)]
            await flowing.wait()  # requests are flowing
            marks["killed"] = time.monotonic()
            await asyncio.to_thread(kill)
            await asyncio.to_thread(wait_promoted)
            marks["promoted"] = time.monotonic()
            deadline = time.monotonic() + RECOVERY_TIMEOUT
            for user in users:  # the app answers again: poll it, bounded
                while (await ask(user)).status != 200:
                    assert time.monotonic() < deadline, f"{user}: no 200 after the failover"
                    await asyncio.sleep(0.05)
            marks["recovered"] = time.monotonic()
            stop.set()
            await asyncio.gather(*loaders)
            after: dict[str, set[str]] = {u: set() for u in users}
            for answer in await asyncio.gather(*(ask(u) for u in users for _ in range(20))):
                assert answer.status == 200, answer
                assert answer.token is not None
                after[answer.user].add(answer.token)
            return FailoverRun(
                {u: t for u, t in before.items() if t is not None},
                answers,
                marks["killed"],
                marks["promoted"],
                marks["recovered"],
                after,
            )

    return asyncio.run(main())


def queue_revocations(store: RedisStore, count: int) -> None:
    """``count`` revocations that failed at logout, queued in the store."""
    chat = ChatAuth(CountingProvider(), store)
    for i in range(count):
        session = chat.get_session(ChatIdentity(f"gone-{i}"), "s")
        store.add_pending(session.token, "ERROR_PROVIDER_UNAVAILABLE")


def check_failover(run: FailoverRun, emulator: CometChatEmulator, label: str) -> dict[str, float]:
    """The assertions both topologies share; returns the figures."""
    statuses = collections.Counter(a.status for a in run.answers)
    assert set(statuses) <= {200, 503}, statuses  # never a 500
    for answer in run.answers:
        if answer.status == 200:  # never another user's token
            assert answer.token in emulator.tokens_of(answer.user), answer
        else:
            assert answer.retry_after is not None and int(answer.retry_after) >= 1
    lost = 0
    for user in run.before:
        assert len(run.after[user]) == 1, run.after  # one consistent token per session
        if run.after[user] != {run.before[user]}:
            lost += 1
    unavailable = [a.at for a in run.answers if a.status == 503]
    window = (max(unavailable) - min(unavailable)) if unavailable else 0.0
    figures = {
        "requests": len(run.answers),
        "answered_503": statuses[503],
        "window_503_s": round(window, 2),
        "kill_to_promoted_s": round(run.promoted_at - run.killed_at, 2),
        "kill_to_recovered_s": round(run.recovered_at - run.killed_at, 2),
        "tokens_lost": lost,
    }
    print(f"\n[issue 16] failover {label}: {figures}")
    return figures


def test_cluster_failover_of_the_users_primary(
    emulator: CometChatEmulator,
    redis_cluster_factory: Callable[..., RedisCluster],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cluster = redis_cluster_factory(appendonly=True)
    # The users' slots and the pending queue on one primary (the one this test kills): users
    # chosen by uid, the queue's slot by the key prefix.
    users = pick_users_on_one_primary(cluster)
    victim = cluster.primary_for(user_tag(users[0]))
    prefix = next(
        p
        for p in (f"fo-{secrets.token_hex(3)}" for _ in range(1000))
        if cluster.primary_for(f"{p}:pending") is victim
    )
    url = with_prefix(cluster.url, prefix)
    store = store_from_url(url)
    assert isinstance(store, RedisStore)
    queue_revocations(store, 5)
    assert store.count_pending() == 5

    with WorkerServer(chatauth_env(emulator, url), tmp_path / "uvicorn.log") as server:
        run = run_failover(
            server,
            victim.kill,
            lambda: cluster.wait_failover(user_tag(users[0]), victim, STARTUP_DEADLINE),
            users,
        )
    with capsys.disabled():
        figures = check_failover(run, emulator, "cluster (primary of the users' slot killed)")
    assert figures["tokens_lost"] == 0
    assert store.count_pending() == 5  # the queue survived on the promoted replica
    store.close()


def user_tag(uid: str) -> str:
    """A key in the slot of ``uid``'s keys (its ``{<user digest>}`` hash tag)."""
    return f"{{{SessionKey('cometchat', uid).user_digest}}}"


def pick_users_on_one_primary(cluster: RedisCluster, count: int = 3) -> tuple[str, ...]:
    """``count`` uids whose slots the same primary serves."""
    by_node: dict[int, list[str]] = collections.defaultdict(list)
    for i in range(200):
        uid = f"user-{i}"
        node = cluster.primary_for(user_tag(uid))
        by_node[node.port].append(uid)
        if len(by_node[node.port]) == count:
            return tuple(by_node[node.port])
    raise AssertionError("no primary serves three of 200 users")


def test_sentinel_failover_of_the_primary(
    emulator: CometChatEmulator,
    redis_sentinel_factory: Callable[..., RedisSentinel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sentinel = redis_sentinel_factory(appendonly=True)
    url = with_prefix(sentinel.url, f"fo-{secrets.token_hex(3)}")
    store = store_from_url(url)
    assert isinstance(store, RedisStore)
    queue_revocations(store, 5)
    assert store.count_pending() == 5
    old = sentinel.master_address()
    assert old is not None

    with WorkerServer(chatauth_env(emulator, url), tmp_path / "uvicorn.log") as server:
        run = run_failover(
            server, sentinel.primary.kill, lambda: sentinel.wait_promoted(old), USERS
        )
    with capsys.disabled():
        figures = check_failover(run, emulator, "sentinel (primary killed)")
    assert figures["tokens_lost"] == 0
    assert store.count_pending() == 5
    store.close()
