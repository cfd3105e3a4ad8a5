"""Real WSGI servers (waitress, gunicorn) in child processes on 127.0.0.1, stopped by PID."""

from __future__ import annotations

import os
import ssl
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import httpx

from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.ports import port_is_open
from tests.servers.processes import start_process, stop_process

REPO = Path(__file__).resolve().parents[3]


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


def _answers(port: int) -> str | None:
    # Ready means the app answers, not just that the port is open: gunicorn's master listens
    # before its workers have imported the app (seconds on a loaded machine).
    if not port_is_open(port):
        return f"nothing listens on port {port} yet"
    try:
        # A short timeout per probe: the probe is repeated until STARTUP_DEADLINE.
        httpx.get(f"http://127.0.0.1:{port}/login", timeout=5)  # any HTTP answer will do
    except httpx.TransportError as exc:
        return repr(exc)
    return None


def _program(command: Sequence[str]) -> str:
    """``waitress`` for ``python -m waitress ...``, as failure messages call the server."""
    return command[2] if len(command) > 2 and command[1] == "-m" else command[0]


@contextmanager
def serve_on_free_port(
    command: Callable[[int], Sequence[str]], env: Mapping[str, str], log: Path
) -> Iterator[str]:
    """Run ``command(port)`` from the repository root on a port it really gets (a taken port
    is detected and another one tried, see ``start_process``) until the app answers; yield
    its base URL; stop it (SIGTERM, then SIGKILL) by its PID afterwards, whatever happened."""
    proc, port = start_process(
        command,
        _answers,
        name=_program(command(0)),
        what="answer HTTP",
        log_path=log,
        cwd=REPO,
        env={**os.environ, **env},
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


@contextmanager
def serve(command: Sequence[str], port: int, env: Mapping[str, str], log: Path) -> Iterator[str]:
    """Like :func:`serve_on_free_port`, on the ``port`` already written into ``command``.

    A port picked in advance may be taken by another process before the server binds it; then
    this fails the test, saying so (the listener's owner is checked: the test never talks to
    someone else's server). Prefer :func:`serve_on_free_port`, which tries another port.
    """
    proc, _ = start_process(
        lambda _port: command,
        _answers,
        name=_program(command),
        what="answer HTTP",
        log_path=log,
        port=port,
        cwd=REPO,
        env={**os.environ, **env},
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


__all__ = [
    "REPO",
    "all_at_once",
    "fifty_at_once",
    "gunicorn_command",
    "serve",
    "serve_on_free_port",
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

    A client per thread, as fifty browsers' tabs would be: one client shared by fifty
    threads once failed a request with ``EBADF`` on a loaded machine (its pool closing a
    connection another thread was reading). The clients share one SSL context, so that
    making fifty costs less than the requests themselves.
    """
    context = ssl.create_default_context()

    def get() -> httpx.Response:
        with httpx.Client(
            base_url=base_url, cookies=cookies, timeout=REQUEST_DEADLINE, verify=context
        ) as client:
            return client.get(path)

    return all_at_once(50, get)
