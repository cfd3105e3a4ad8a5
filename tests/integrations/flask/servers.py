"""Real WSGI servers (waitress, gunicorn) in child processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx
import pytest

from tests.servers.ports import free_port, port_is_open
from tests.servers.processes import stop_process

REPO = Path(__file__).resolve().parents[3]
START_TIMEOUT = 60.0


def waitress_command(target: str, port: int, threads: int = 16) -> list[str]:
    """``python -m waitress --call module:factory`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "waitress",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--threads={threads}",
        "--call",
        target,
    ]


def gunicorn_command(target: str, port: int, workers: int = 2, threads: int = 8) -> list[str]:
    """``gunicorn 'module:factory()'`` with several worker processes, each threaded."""
    command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
    command += ["--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread"]
    if _gunicorn_major() >= 25:
        # Gunicorn 25+ opens a control socket at one fixed path per user: test servers
        # running side by side would fight over it.
        command.append("--no-control-socket")
    return [*command, f"{target}()"]


def _gunicorn_major() -> int:
    try:
        return int(version("gunicorn").split(".")[0])
    except (PackageNotFoundError, ValueError):
        return 0


def _answers(url: str, port: int) -> bool:
    if not port_is_open(port):
        return False
    try:
        httpx.get(f"{url}/login", timeout=5)  # any HTTP answer will do
    except httpx.TransportError:
        return False
    return True


@contextmanager
def serve(command: Sequence[str], port: int, env: Mapping[str, str], log: Path) -> Iterator[str]:
    """Run ``command`` from the repository root until it listens on ``port``; yield its base
    URL; stop it (SIGTERM, then SIGKILL) by its PID afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=REPO,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        # Ready means the app answers, not just that the port is open: gunicorn's master
        # listens before its workers have imported the app (seconds on a loaded machine).
        while not _answers(url, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"{command[2]} did not start on port {port}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            time.sleep(0.05)
        yield url
    finally:
        stop_process(proc, timeout=10)


__all__ = [
    "REPO",
    "all_at_once",
    "fifty_at_once",
    "free_port",
    "gunicorn_command",
    "serve",
    "waitress_command",
]


def all_at_once(count: int, call: Callable[[], httpx.Response]) -> list[httpx.Response]:
    """Run ``call`` in ``count`` threads released together by a barrier; any exception
    fails the test with the first few."""
    barrier = threading.Barrier(count)
    results: list[httpx.Response | BaseException] = [RuntimeError("not run")] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except BaseException as exc:  # reported below with the others
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    return [r for r in results if isinstance(r, httpx.Response)]


def fifty_at_once(base_url: str, cookies: httpx.Cookies, path: str) -> list[httpx.Response]:
    """50 simultaneous ``GET path`` with one browser's cookies.

    One client with fifty connections: httpx clients are thread-safe, and fifty clients
    (an SSL context each) would cost more than the requests themselves.
    """
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, cookies=cookies, timeout=30, limits=limits) as client:
        return all_at_once(50, lambda: client.get(path))
