"""Loopback ports: which process listens where, and a port for addresses nothing answers on.

Servers are never started on a port picked in advance (``free_port()`` then bind later): on a
busy machine another process can take the port in between. Servers we run in-process bind
port 0 and report what they got (``chatauth.testing.server.serve``); server processes are
started by :func:`tests.servers.processes.start_process`, which detects a taken port (the
process says so and exits, or another process answers the readiness probe) and starts again
on a new port.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path

#: What servers print when their port is taken: redis-server, PostgreSQL, Synapse (Twisted),
#: uvicorn, gunicorn ("Connection in use"), waitress, Django's runserver, Werkzeug.
ADDRESS_IN_USE = re.compile(
    r"address already in use|port is already in use|is in use by another program"
    r"|connection in use|EADDRINUSE|\[Errno 98\]",
    re.IGNORECASE,
)


class PortInUseError(Exception):
    """The server could not have its port: another process holds it."""

    def __init__(self, port: int, detail: str) -> None:
        super().__init__(f"port {port} is taken by another process ({detail})")
        self.port = port
        self.detail = detail


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on right now (the kernel picks it).

    Only a guess: another process may take it the next moment. :func:`start_process
    <tests.servers.processes.start_process>` uses it and then checks that its server really
    got the port; for an address that must refuse connections, use :func:`refused_port`.
    Never start a server on it and assume it is yours.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refused_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port on ``host`` that refuses connections for the whole ``with`` block.

    Held by a socket of ours that is bound without ``SO_REUSEADDR`` and never listens: a
    connection is refused, and no other process can bind (let alone listen on) the port
    meanwhile, unlike a :func:`free_port` that is merely free when asked.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield int(sock.getsockname()[1])


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _listening_inodes(port: int, host: str) -> set[str] | None:
    """Socket inodes listening on ``host:port`` (IPv4), from ``/proc/net/tcp``; None without
    procfs."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    # /proc/net/tcp writes the address as the in-memory (little-endian on x86/arm) u32.
    packed = socket.inet_aton(host)
    wanted = {f"{int.from_bytes(packed, order):08X}:{port:04X}" for order in ("little", "big")} | {
        f"00000000:{port:04X}"
    }
    inodes: set[str] = set()
    for line in lines:
        fields = line.split()
        # local_address, st (0A = LISTEN), inode
        if len(fields) > 9 and fields[1] in wanted and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn's and gunicorn's workers share the listener)."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return tree


def listens_on(pid: int, port: int, host: str = "127.0.0.1") -> bool | None:
    """Whether process ``pid`` (or a child of it) holds the socket listening on ``host:port``.

    None when procfs cannot tell (not Linux): callers then trust the readiness probe.
    """
    inodes = _listening_inodes(port, host)
    if inodes is None:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for member in _process_tree(pid):
        try:
            fds = os.listdir(f"/proc/{member}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{member}/fd/{fd}") in targets:
                    return True
    return False
