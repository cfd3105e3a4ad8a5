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
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from chatauth.stores.redis import RedisStore
from chatauth.testing.cometchat import CometChatEmulator
from tests.servers.ports import free_port
from tests.servers.processes import stop_process
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

ROOT = Path(__file__).parents[2]
WORKERS = 4
REQUESTS_PER_WORKER = 250
USER = {"X-Test-User": "alice"}
API_KEY = "many-workers-rest-api-key-0123456789"


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
        "CHATAUTH_TIMEOUT": "5",
    }


def clean_environ(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATAUTH_")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


class WorkerServer:
    """``uvicorn tests.e2e.many_workers_app:app --workers 4`` on a free loopback port.

    Ready once each of the 4 worker processes has answered a request (so the test's burst
    reaches processes that are all accepting). Stopped by the supervisor's PID, which stops
    its workers.
    """

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = clean_environ(env)
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker_pids: set[str] = set()

    def __enter__(self) -> WorkerServer:
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tests.e2e.many_workers_app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(WORKERS),
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-graceful-shutdown",
                "5",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_for_workers()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_for_workers(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.worker_pids) < WORKERS:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"uvicorn exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"only {len(self.worker_pids)} of {WORKERS} uvicorn workers answered within "
                    f"{timeout:.0f} s:\n{self.log()}"
                )
            try:
                # A fresh connection each time, so the kernel may hand it to any worker.
                response = httpx.get(self.url + "/page", headers={"Connection": "close"})
                self.worker_pids.add(response.headers["x-worker-pid"])
            except httpx.TransportError:
                time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.proc is not None:
            stop_process(self.proc, 20)  # type: ignore[arg-type]
        self._log.close()


@pytest.fixture
def emulator(serve_emulator: Callable[[CometChatEmulator], CometChatEmulator]) -> CometChatEmulator:
    return serve_emulator(CometChatEmulator(api_key=API_KEY))


def issue_calls(emulator: CometChatEmulator, uid: str = "alice") -> int:
    """Calls that create a CometChat auth token (user creation with a token, or a new one)."""
    return emulator.calls.count_of("POST", "/v3/users") + emulator.calls.count_of(
        "POST", f"/v3/users/{uid}/auth_tokens"
    )


async def burst(url: str, count: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        return await asyncio.gather(
            *(client.get(url + "/chat/token", headers=USER) for _ in range(count))
        )


def test_four_workers_times_250_first_requests_make_one_issue_call(
    emulator: CometChatEmulator,
    redis_server: RedisServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prefix = f"workers-{os.getpid()}-{time.monotonic_ns()}"
    env = chatauth_env(emulator, f"{redis_server.url}?key_prefix={prefix}")
    # The provider takes its time over the first call, as a real one on the internet does:
    # the whole burst is in flight while the one issue is under way.
    emulator.faults.latency(0.5, path="/v3/users/alice", method="GET")

    with WorkerServer(env, tmp_path / "uvicorn.log") as server:
        before = len(emulator.calls)
        responses = asyncio.run(burst(server.url, WORKERS * REQUESTS_PER_WORKER))
        bad = [r.json() for r in responses if r.status_code != 200][:3]
        assert [r.status_code for r in responses] == [200] * len(responses), bad

    tokens = {r.json()["token"] for r in responses}
    by_worker = collections.Counter(r.headers["x-worker-pid"] for r in responses)
    assert len(tokens) == 1
    assert issue_calls(emulator) == 1
    assert emulator.calls[before:].count(("GET", "/v3/users/alice")) == 1
    assert emulator.tokens_of("alice") == list(tokens)
    # All four processes served part of the burst, so the race really was across processes.
    assert len(by_worker) == WORKERS, by_worker
    with capsys.disabled():
        print(
            f"\n[issue 7] {len(responses)} concurrent first requests over {len(by_worker)} "
            f"workers {sorted(by_worker.values())}: {issue_calls(emulator)} issue call(s) at "
            f"the CometChat emulator"
        )


def test_redis_stopped_mid_run_answers_503_and_recovers(
    emulator: CometChatEmulator, redis_factory: Callable[[], RedisServer], tmp_path: Path
) -> None:
    redis = redis_factory()  # our own server: this test stops it
    during: list[httpx.Response] = []  # token answers while Redis stops and starts
    pages: list[httpx.Response] = []

    async def run(url: str) -> tuple[httpx.Response, list[httpx.Response], list[httpx.Response]]:
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
            first = await client.get("/chat/token", headers=USER)
            stop = asyncio.Event()

            async def load() -> None:
                while not stop.is_set():
                    during.append(await client.get("/chat/token", headers=USER))
                    pages.append(await client.get("/page"))

            loaders = [asyncio.create_task(load()) for _ in range(8)]
            await asyncio.sleep(0.5)
            await asyncio.to_thread(redis.stop)  # mid-run: the loaders keep going
            outage = [await client.get("/chat/token", headers=USER) for _ in range(12)]
            pages.extend([await client.get("/page") for _ in range(12)])
            await asyncio.to_thread(redis.start)  # back, and empty: nothing was persisted
            await asyncio.sleep(0.5)
            stop.set()
            await asyncio.gather(*loaders)
            after = await asyncio.gather(
                *(client.get("/chat/token", headers=USER) for _ in range(40))
            )
            return first, outage, list(after)

    with WorkerServer(chatauth_env(emulator, redis.url), tmp_path / "uvicorn.log") as server:
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


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatauth.cli", *args],
        cwd=ROOT,
        env=clean_environ(env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_logout_during_a_provider_outage_is_revoked_by_revoke_pending(
    emulator: CometChatEmulator, redis_server: RedisServer, tmp_path: Path
) -> None:
    prefix = f"logout-{os.getpid()}-{time.monotonic_ns()}"
    env = chatauth_env(emulator, f"{redis_server.url}?key_prefix={prefix}")
    store = RedisStore.from_url(redis_server.url, prefix=prefix)
    with WorkerServer(env, tmp_path / "uvicorn.log") as server:
        token = httpx.get(server.url + "/chat/token", headers=USER).json()["token"]
        assert emulator.is_token_alive(token)

        emulator.faults.status(503, times=1000, method="DELETE")  # the provider is down
        logout = httpx.post(server.url + "/logout", headers=USER)
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
    store.close()
