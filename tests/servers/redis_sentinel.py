"""A real Sentinel-watched Redis for the test suite: a primary, a replica and three
``redis-sentinel`` processes (Debian's ``redis-sentinel`` package), all on 127.0.0.1.

Each process has its own temp dir (a sentinel rewrites its config file, so each gets its own)
and is stopped by its PID. Readiness is read from the servers: the replica reports
``master_link_status:up``, and every sentinel names the primary for the service, knows the
replica and knows the two other sentinels (so a failover can be agreed on).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.servers.deadlines import STARTUP_DEADLINE, STOP_DEADLINE
from tests.servers.processes import (
    LazyTempDir,
    ServerGroup,
    ServerProcess,
    log_tail,
    wait_pid_gone,
)
from tests.servers.redis import find_redis_server, redis_command
from tests.servers.redis_cluster import info_fields

REDIS_SENTINEL = "/usr/bin/redis-sentinel"
SENTINEL_HINT = "redis-sentinel not found. Install it: apt-get install -y redis-sentinel"
SERVICE = "mymaster"
READY_TIMEOUT = STARTUP_DEADLINE
#: Milliseconds without an answer before a sentinel thinks the primary is down.
DOWN_AFTER_MS = 1000


def find_redis_sentinel() -> str:
    """Debian's ``/usr/bin/redis-sentinel`` (or ``$REDIS_SENTINEL``); ``pytest.fail`` with the
    install command if missing."""
    binary = os.environ.get("REDIS_SENTINEL") or REDIS_SENTINEL
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        found = shutil.which("redis-sentinel")
        if found is None:
            pytest.fail(f"{SENTINEL_HINT} (looked for {binary} and on PATH)")
        binary = found
    return binary


def _bulk_strings(reply: bytes) -> list[str]:
    """The bulk strings of a flat or nested RESP array reply, in order."""
    out: list[str] = []
    lines = reply.split(b"\r\n")
    for i, line in enumerate(lines):
        if line.startswith(b"$") and line != b"$-1" and i + 1 < len(lines):
            out.append(lines[i + 1].decode(errors="replace"))
    return out


class _Process(ServerProcess):
    """One loopback ``redis-server`` or ``redis-sentinel`` with its own temp dir, on a port it
    really got (``args()`` is called per start attempt)."""

    def __init__(self, name: str, args: Callable[[], list[str]], prefix: str) -> None:
        self.name = name
        self.args = args
        self._tmp = LazyTempDir(prefix)

    @property
    def log_path(self) -> Path:
        return self.directory / "server.log"

    def command(self, *args: str) -> bytes:
        return redis_command(self.port, *args, host=self.host)

    def _probe(self) -> str | None:
        try:
            return None if self.command("PING").startswith(b"+PONG") else "no PONG"
        except OSError as exc:
            return str(exc)

    def start(self) -> _Process:
        if self.running:
            return self
        self._start_process(
            lambda port: [*self.args(), "--port", str(port), "--dir", str(self.directory)],
            self._probe,
            what="answer PING",
            interval=0.02,
        )
        return self

    def kill(self) -> None:
        """SIGKILL (a crash, not a shutdown) and reap; the data dir is kept."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(STOP_DEADLINE)
            wait_pid_gone(proc.pid, STOP_DEADLINE)


class _Sentinel(_Process):
    """A sentinel; its own config file (which it rewrites), port and bind on the command
    line."""

    def __init__(self, binary: str, primary: _Process, service: str) -> None:
        super().__init__("redis-sentinel", self._command, "chatauth-sentinel-")
        self.binary = binary
        self.primary = primary
        self.service = service

    def _command(self) -> list[str]:
        conf = self.directory / "sentinel.conf"
        if not conf.exists():  # a restart keeps what the sentinel rewrote
            conf.write_text(
                f"sentinel monitor {self.service} {self.host} {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {self.service} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {self.service} 10000\n"
                f"sentinel parallel-syncs {self.service} 1\n"
            )
        return [self.binary, str(conf), "--bind", self.host]


class RedisSentinel(ServerGroup):
    """A primary, one replica and three sentinels (quorum 2) watching service ``mymaster``.

    Use as a context manager (start on enter; stop every process by PID and delete the temp
    dirs on exit, even when start-up failed half-way). ``url`` is the ``redis+sentinel://``
    store URL naming the three sentinels.

    Args:
        appendonly: run the data nodes with ``appendonly yes`` and ``appendfsync always``.
    """

    host = "127.0.0.1"
    service = SERVICE

    def __init__(self, *, appendonly: bool = False) -> None:
        server = find_redis_server()
        sentinel = find_redis_sentinel()
        data_args = [
            server,
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            "always",
        ]
        self.primary = _Process(
            "redis-server (primary)", lambda: data_args, "chatauth-sentinel-data-"
        )
        self.replica = _Process(
            "redis-server (replica)",
            lambda: [*data_args, "--replicaof", self.host, str(self.primary.port)],
            "chatauth-sentinel-data-",
        )
        self.sentinels = [_Sentinel(sentinel, self.primary, self.service) for _ in range(3)]
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<port>,.../mymaster`` naming the three sentinels."""
        addresses = ",".join(f"{self.host}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{addresses}/{self.service}"

    @property
    def processes(self) -> list[_Process]:
        return [self.primary, self.replica, *self.sentinels]

    def data_nodes(self) -> list[_Process]:
        return [self.primary, self.replica]

    def diagnostics(self) -> str:
        return "\n".join(log_tail(p.log_path, 15) for p in self.processes)

    def start(self) -> RedisSentinel:
        """Start primary and replica, wait for the replica's sync, then the sentinels, and
        wait until every sentinel knows the primary, the replica and its two peers."""
        started = time.monotonic()
        self.primary.start()
        self.replica.start()
        self._wait("the replica to sync", self._replica_not_synced)
        for sentinel in self.sentinels:
            sentinel.start()
        self._wait("the sentinels to agree", self._sentinels_not_ready)
        self.startup_seconds = time.monotonic() - started
        return self

    def _replica_not_synced(self) -> str | None:
        role = info_fields(self.replica.command("INFO", "replication"))
        return None if role.get("master_link_status") == "up" else "replica link down"

    def master_address(self, sentinel: _Process | None = None) -> tuple[str, int] | None:
        """What a sentinel (default: the first running one) answers to
        ``SENTINEL get-master-addr-by-name``."""
        sentinel = sentinel or next(s for s in self.sentinels if s.running)
        answer = _bulk_strings(
            sentinel.command("SENTINEL", "get-master-addr-by-name", self.service)
        )
        return (answer[0], int(answer[1])) if len(answer) == 2 else None

    def _sentinels_not_ready(self) -> str | None:
        expected = (self.host, self.primary.port)
        for sentinel in self.sentinels:
            if self.master_address(sentinel) != expected:
                return f"sentinel {sentinel.port} names {self.master_address(sentinel)}"
            state = info_fields(sentinel.command("INFO", "sentinel"))
            master = state.get("master0", "")
            if "slaves=1" not in master or f"sentinels={len(self.sentinels)}" not in master:
                return f"sentinel {sentinel.port}: {master}"
        return None

    def _wait(self, what: str, probe: Callable[[], str | None]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                reason = probe()
            except OSError as exc:
                reason = str(exc)
            if reason is None:
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Timed out after {READY_TIMEOUT:.0f} s waiting for {what} ({reason}).\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(0.05)

    def wait_promoted(self, old: tuple[str, int], timeout: float = READY_TIMEOUT) -> float:
        """Poll the sentinels until all running ones name a primary other than ``old`` and
        that node answers as ``role:master``; returns the seconds waited."""
        started = time.monotonic()

        def not_yet() -> str | None:
            answers = {self.master_address(s) for s in self.sentinels if s.running}
            if len(answers) != 1 or old in answers or None in answers:
                return f"sentinels name {answers}"
            ((_host, port),) = answers  # type: ignore[misc]
            role = info_fields(redis_command(port, "INFO", "replication", host=self.host))
            return None if role.get("role") == "master" else "promoted node not master yet"

        self._wait("a failover", not_yet)
        return time.monotonic() - started

    def members(self) -> list[_Process]:
        return self.processes

    def stop_order(self) -> list[_Process]:
        # Sentinels first, so none of them reacts to the data nodes going away.
        return list(reversed(self.processes))
