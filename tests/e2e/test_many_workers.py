"""Many processes, one Redis: a real ``uvicorn --workers 4`` app server, a real redis-server
and the CometChat emulator over loopback HTTP (issue 7).

- 1000 concurrent first requests for one user, spread over 4 worker processes -> exactly one
  issue call at the provider, and every request gets that one token;
- Redis stopped mid-run -> token requests get 503 + ``Retry-After``, other pages keep serving,
  and after Redis returns every worker agrees on one fresh, working token;
- logout while the provider is down -> the revocation is queued in Redis, and
  ``chatauth revoke-pending`` revokes it once the provider is back (0 tokens alive).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx
import pytest
import redis

from chatauth.stores.redis import RedisStore
from chatauth.testing.cometchat import CometChatEmulator
from chatauth.testing.faults import Hold
from tests.servers.deadlines import COMMAND_DEADLINE, REQUEST_DEADLINE
from tests.servers.processes import start_process, stop_process
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

ROOT = Path(__file__).parents[2]
WORKERS = 4
REQUESTS_PER_WORKER = 250
USER = {"X-Test-User": "alice"}
API_KEY = "many-workers-rest-api-key-0123456789"
#: How long the provider's issue call is held open at most while the test waits to see the
#: burst arrive at every worker. Well inside the issue lock's TTL (30 s) and the app's read
#: timeout (CHATAUTH_TIMEOUT below), so holding it never lets a second worker issue.
HOLD_DEADLINE = 20.0


def chatauth_env(emulator: CometChatEmulator, redis_url: str) -> dict[str, str]:
    """The ``CHATAUTH_*`` settings the app workers and the CLI share."""
    return {
        "CHATAUTH_PROVIDER": "cometchat",
        "CHATAUTH_COMETCHAT_APP_ID": emulator.app_id,
        "CHATAUTH_COMETCHAT_REGION": emulator.region,
        "CHATAUTH_COMETCHAT_API_KEY": API_KEY,
        "CHATAUTH_COMETCHAT_BASE_URL": emulator.base_url,
        "CHATAUTH_STORE": redis_url,
        "CHATAUTH_RETRY_ATTEMPTS": "2",
        # Per HTTP phase, generous: a loaded machine must not turn a slow answer of the
        # emulator into a retry (a second issue call), and a held call must outlast the hold.
        "CHATAUTH_TIMEOUT": "30",
    }


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


class WorkerServer:
    """``uvicorn tests.e2e.many_workers_app:app --workers 4`` on a loopback port it got.

    Ready once each of the 4 worker processes has answered a request (so the test's burst
    reaches processes that are all accepting). Stopped by the supervisor's PID, which stops
    its workers.
    """

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = clean_environ(env)
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.worker_pids: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> WorkerServer:
        self.proc, self.port = start_process(
            lambda port: [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.e2e.many_workers_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],
            self._all_workers_answer,
            name="uvicorn --workers 4",
            what=f"answer from all {WORKERS} worker processes",
            log_path=self.log_path,
            interval=0.02,
            cwd=ROOT,
            env=self.env,
        )
        return self

    def _all_workers_answer(self, port: int) -> str | None:
        if port != self.port:  # a new attempt (the last port was taken)
            self.port, self.worker_pids = port, set()
        try:
            # A fresh connection each time, so the kernel may hand it to any worker.
            response = httpx.get(
                self.url + "/page", headers={"Connection": "close"}, timeout=REQUEST_DEADLINE
            )
        except httpx.TransportError as exc:
            return repr(exc)
        self.worker_pids.add(response.headers["x-worker-pid"])
        if len(self.worker_pids) < WORKERS:
            return f"{len(self.worker_pids)} of {WORKERS} workers answered"
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)


@pytest.fixture
def emulator(serve_emulator: Callable[[CometChatEmulator], CometChatEmulator]) -> CometChatEmulator:
    return serve_emulator(CometChatEmulator(api_key=API_KEY))


def issue_calls(emulator: CometChatEmulator, uid: str = "alice") -> int:
    """Calls that create a CometChat auth token (user creation with a token, or a new one)."""
    return emulator.calls.count_of("POST", "/v3/users") + emulator.calls.count_of(
        "POST", f"/v3/users/{uid}/auth_tokens"
    )


@dataclasses.dataclass
class HeldBurst:
    """What the burst saw: the responses, when each arrived (monotonic), whether the issue
    call reached the gate, the per-worker arrival counts while it was held, and when the gate
    was opened."""

    responses: list[httpx.Response]
    finished_at: list[float]
    held: bool
    arrivals: dict[str, int]
    released_at: float


async def burst_through_gate(
    url: str, count: int, gate: Hold, arrivals: Callable[[], dict[str, int]]
) -> HeldBurst:
    """``count`` concurrent first requests; the provider's issue call is held at ``gate``
    until every worker has requests of the burst in flight (or ``HOLD_DEADLINE`` passes)."""
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    finished_at: list[float] = []
    async with httpx.AsyncClient(limits=limits, timeout=2 * REQUEST_DEADLINE) as client:

        async def one() -> httpx.Response:
            response = await client.get(url + "/chat/token", headers=USER)
            finished_at.append(time.monotonic())
            return response

        burst = asyncio.gather(*(one() for _ in range(count)))
        try:
            held = await asyncio.to_thread(gate.wait_entered, HOLD_DEADLINE)
            seen = await _until_every_worker_waits(arrivals, count) if held else {}
            released_at = time.monotonic()
        finally:
            gate.release()
        responses = await burst
    return HeldBurst(list(responses), finished_at, held, seen, released_at)


async def _until_every_worker_waits(
    arrivals: Callable[[], dict[str, int]], count: int
) -> dict[str, int]:
    """Poll the arrival counts until all workers have some, or the whole burst arrived, or
    ``HOLD_DEADLINE``; the last counts seen."""
    deadline = time.monotonic() + HOLD_DEADLINE
    while True:
        seen = await asyncio.to_thread(arrivals)
        done = len(seen) >= WORKERS or sum(seen.values()) >= count
        if done or time.monotonic() > deadline:
            return seen
        await asyncio.sleep(0.02)


def test_four_workers_times_250_first_requests_make_one_issue_call(
    emulator: CometChatEmulator,
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = f"workers-{os.getpid()}-{time.monotonic_ns()}"
    arrivals_key = f"{prefix}:arrivals"
    env = {
        **chatauth_env(emulator, f"{redis_server.url}?key_prefix={prefix}"),
        "MANY_WORKERS_ARRIVALS": redis_server.url,
        "MANY_WORKERS_ARRIVALS_KEY": arrivals_key,
    }
    # The provider's token-creating call (POST /v3/users or /v3/users/alice/auth_tokens) is
    # parked until the test has seen the burst reach the workers: the race is made to happen,
    # not hoped for with a latency.
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
    # While the one issue call was held open, requests from several worker processes had
    # arrived and none had been answered: they were all in flight at once.
    waiting = {pid: n for pid, n in result.arrivals.items() if n > 0}
    assert len(waiting) >= 2, result.arrivals
    assert min(result.finished_at) >= result.released_at
    tokens = {r.json()["token"] for r in responses}
    by_worker = collections.Counter(r.headers["x-worker-pid"] for r in responses)
    assert len(tokens) == 1
    assert issue_calls(emulator) == 1
    assert gate.count == 1
    assert emulator.calls[before:].count(("GET", "/v3/users/alice")) == 1
    assert emulator.tokens_of("alice") == list(tokens)
    # All four processes served part of the burst, so the race really was across processes.
    assert len(by_worker) == WORKERS, by_worker
    with capsys.disabled():
        print(
            f"\n[issue 7] {len(responses)} concurrent first requests over {len(by_worker)} "
            f"workers {sorted(by_worker.values())}; while the issue call was held, "
            f"{sum(waiting.values())} requests were waiting in {len(waiting)} workers "
            f"{sorted(waiting.values())}: {issue_calls(emulator)} issue call(s) at the "
            "CometChat emulator"
        )


def test_redis_stopped_mid_run_answers_503_and_recovers(
    emulator: CometChatEmulator, redis_factory: Callable[[], RedisServer], tmp_path: Path
) -> None:
    redis = redis_factory()  # our own server: this test stops it
    during: list[httpx.Response] = []  # token answers while Redis stops and starts
    pages: list[httpx.Response] = []

    async def run(url: str) -> tuple[httpx.Response, list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=url, limits=limits, timeout=REQUEST_DEADLINE
        ) as client:
            first = await client.get("/chat/token", headers=USER)
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    during.append(await client.get("/chat/token", headers=USER))
                    pages.append(await client.get("/page"))

            loaders = [asyncio.create_task(load()) for _ in range(8)]
            await until(lambda: len(during) >= 8, "the loaders to get going")
            await asyncio.to_thread(redis.stop)  # mid-run: the loaders keep going
            outage = [await client.get("/chat/token", headers=USER) for _ in range(12)]
            pages.extend([await client.get("/page") for _ in range(12)])
            await asyncio.to_thread(redis.start)  # back, and empty: nothing was persisted
            restarted = len(during)
            await until(
                lambda: any(r.status_code == 200 for r in during[restarted:]),
                "a token for the loaders after Redis came back",
            )
            stop.set()
            await asyncio.gather(*loaders)
            after = await asyncio.gather(
                *(client.get("/chat/token", headers=USER) for _ in range(40))
            )
            return first, outage, list(after)

    # Each read must reach Redis: a session the worker kept (LOCAL_CACHE) would be served
    # through the outage's first seconds instead (tested in tests/core/test_hits.py).
    env = {**chatauth_env(emulator, redis.url), "CHATAUTH_LOCAL_CACHE": "0"}
    with WorkerServer(env, tmp_path / "uvicorn.log") as server:
        first, outage, after = asyncio.run(run(server.url))

    assert first.status_code == 200
    for response in outage:
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "ERROR_STORE_UNAVAILABLE"
    assert {p.status_code for p in pages} == {200}  # pages that do not need chat kept serving
    assert {r.status_code for r in during} <= {200, 503}  # a token or a 503, nothing else
    assert [r.status_code for r in after] == [200] * len(after), server.log()
    fresh = {r.json()["token"] for r in after}
    assert len(fresh) == 1  # every worker agrees on one token again...
    assert emulator.is_token_alive(fresh.pop())  # ...and it works at the provider
    # One token before the outage, one after Redis came back empty; none issued during it.
    assert issue_calls(emulator) == 2


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait (letting the other tasks run) until ``condition()`` holds; fail after
    ``REQUEST_DEADLINE``."""
    deadline = time.monotonic() + REQUEST_DEADLINE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {REQUEST_DEADLINE:.0f} s")
        await asyncio.sleep(0.01)


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatauth.cli", *args],
        cwd=ROOT,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE,
    )


def test_logout_during_a_provider_outage_is_revoked_by_revoke_pending(
    emulator: CometChatEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"logout-{os.getpid()}-{time.monotonic_ns()}"
    env = chatauth_env(emulator, f"{redis_server.url}?key_prefix={prefix}")
    store = RedisStore.from_url(redis_server.url, prefix=prefix)
    try:
        with WorkerServer(env, tmp_path / "uvicorn.log") as server:
            token = httpx.get(
                server.url + "/chat/token", headers=USER, timeout=REQUEST_DEADLINE
            ).json()["token"]
            assert emulator.is_token_alive(token)

            emulator.faults.status(503, times=1000, method="DELETE")  # the provider is down
            logout = httpx.post(server.url + "/logout", headers=USER, timeout=REQUEST_DEADLINE)
            assert logout.status_code == 200
            assert logout.json() == {"ended": 1}
            assert emulator.is_token_alive(token)  # not revoked yet...
            assert store.count_pending() == 1  # ...but queued, not forgotten

            still_down = run_cli(env, "revoke-pending")
            assert still_down.returncode == 1, still_down.stderr
            assert "revoked=0 failed=1 remaining=1" in still_down.stdout
            assert emulator.is_token_alive(token)

            emulator.faults.clear()  # the provider is back
            drained = run_cli(env, "revoke-pending", "--limit", "10")
            assert drained.returncode == 0, drained.stderr
            assert "revoked=1 failed=0 remaining=0" in drained.stdout
            assert "remaining" in drained.stderr  # the log line for monitoring

        assert not emulator.is_token_alive(token)
        assert emulator.tokens_of("alice") == []  # 0 tokens alive
        assert store.count_pending() == 0
        for output in (still_down.stdout, still_down.stderr, drained.stdout, drained.stderr):
            assert token not in output
    finally:
        store.close()
