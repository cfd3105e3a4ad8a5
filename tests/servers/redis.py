"""A real redis-server for the test suite (loopback, no persistence, temp dir).

Talks to the server over a raw socket so this module does not need redis-py: the store tests
must prove that chatauth's own ``redis`` extra is enough.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from tests.servers.deadlines import REQUEST_DEADLINE
from tests.servers.processes import LazyTempDir, ServerProcess

REDIS_SERVER = "/usr/bin/redis-server"
INSTALL_HINT = "redis-server not found. Install it: apt-get install -y redis-server"


def find_redis_server() -> str:
    """Debian's ``/usr/bin/redis-server`` (or ``$REDIS_SERVER``); ``pytest.fail`` if missing."""
    binary = os.environ.get("REDIS_SERVER") or REDIS_SERVER
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        found = shutil.which("redis-server")
        if found is None:
            pytest.fail(f"{INSTALL_HINT} (looked for {binary} and on PATH)")
        binary = found
    return binary


def redis_command(
    port: int, *args: str, host: str = "127.0.0.1", timeout: float = REQUEST_DEADLINE
) -> bytes:
    """Send one command in RESP and return the raw first reply (e.g. ``b"+PONG\\r\\n"``).

    Enough for smoke tests and readiness checks; raises ``OSError`` when nothing listens.
    """
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(parts))
        reply = b""
        # A reply is complete once it ends in CRLF and, for a bulk string, carries its payload.
        while not _complete(reply):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        return reply


def _complete(reply: bytes) -> bool:
    if not reply.endswith(b"\r\n"):
        return False
    if reply.startswith(b"$"):
        header, _, rest = reply.partition(b"\r\n")
        length = int(header[1:])
        return length < 0 or len(rest) >= length + 2
    return True


class RedisServer(ServerProcess):
    """``redis-server`` on ``127.0.0.1:<a port it got>`` with ``--save ''`` and no AOF.

    ``stop()`` terminates it by PID (the outage test) and ``start()`` brings it back on the
    same port — empty, since nothing is persisted. As a context manager it starts on enter and
    on exit stops and deletes its temp dir.

    Attributes: ``host``, ``port``, ``url`` (``redis://127.0.0.1:<port>/0``), ``pid``,
    ``directory``, ``log_path``.
    """

    name = "redis-server"

    def __init__(self, *, binary: str | None = None) -> None:
        self.binary = binary or find_redis_server()
        self._tmp = LazyTempDir("chatauth-redis-")
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (once started)."""
        return f"redis://{self.host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def ping(self, timeout: float = REQUEST_DEADLINE) -> bool:
        """True when the server answers ``PING`` with ``+PONG``."""
        try:
            reply = redis_command(self.port, "PING", host=self.host, timeout=timeout)
        except OSError:
            return False
        return reply.startswith(b"+PONG")

    def start(self) -> RedisServer:
        """Start the server (same port as before, if restarting) and wait for ``+PONG``."""
        if self.running:
            return self
        started = time.monotonic()
        self._start_process(
            lambda port: [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            # A short probe timeout: a probe that hangs is retried within STARTUP_DEADLINE.
            lambda: None if self.ping(timeout=2.0) else "no PONG",
            what="answer PING",
            interval=0.02,
        )
        self.startup_seconds = time.monotonic() - started
        return self

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"<RedisServer {where} pid={self.pid}>"
