"""A real Redis Cluster for the test suite: six ``redis-server`` processes on 127.0.0.1
(3 primaries, 3 replicas) joined by ``redis-cli --cluster create --cluster-replicas 1``.

Every node keeps its data and ``nodes.conf`` in its own temp dir and is stopped by its PID.
Readiness is read from the servers themselves: every node answers ``CLUSTER INFO`` with
``cluster_state:ok`` and sees six nodes, and every replica reports ``master_link_status:up``
(so a killed primary's replica is ready to take over).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.servers.deadlines import COMMAND_DEADLINE, STARTUP_DEADLINE, STOP_DEADLINE
from tests.servers.ports import free_port
from tests.servers.processes import (
    LazyTempDir,
    ServerGroup,
    ServerProcess,
    log_tail,
    wait_pid_gone,
)
from tests.servers.redis import find_redis_server, redis_command

REDIS_CLI = "/usr/bin/redis-cli"
CLI_HINT = "redis-cli not found. Install it: apt-get install -y redis-tools (or redis-server)"
#: Milliseconds without an answer before the cluster declares a primary failed (its replica is
#: then promoted). Redis' default is 15000; the failover tests want seconds, not minutes.
NODE_TIMEOUT_MS = 2000


def find_redis_cli() -> str:
    """Debian's ``/usr/bin/redis-cli``; ``pytest.fail`` with the install command if missing."""
    found = REDIS_CLI if Path(REDIS_CLI).is_file() else shutil.which("redis-cli")
    if found is None:
        pytest.fail(CLI_HINT)
    return found


def info_fields(reply: bytes) -> dict[str, str]:
    """``field:value`` lines of an ``INFO`` or ``CLUSTER INFO`` reply (raw RESP)."""
    fields: dict[str, str] = {}
    for line in reply.decode(errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


class ClusterNode(ServerProcess):
    """One ``redis-server --cluster-enabled yes`` on ``127.0.0.1:<port>``, its bus on
    ``<bus_port>`` (``cluster-port``, so the bus need not be port+10000). Both are picked per
    start attempt; an attempt whose port or bus port was taken is retried on new ones."""

    name = "redis-server (cluster node)"

    def __init__(self, binary: str, *, appendonly: bool, node_timeout_ms: int) -> None:
        self.binary = binary
        self.appendonly = appendonly
        self.node_timeout_ms = node_timeout_ms
        self._tmp = LazyTempDir("chatauth-redis-cluster-")
        self.bus_port: int | None = None
        self._started = False

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self, *args: str) -> bytes:
        """One command's raw RESP reply; ``OSError`` when the node does not answer."""
        return redis_command(self.port, *args, host=self.host)

    def _probe(self) -> str | None:
        try:
            return None if self.command("PING").startswith(b"+PONG") else "no PONG"
        except OSError as exc:
            return str(exc)

    def start(self) -> ClusterNode:
        """Start (again, on the same ports and data) and wait for ``PONG``."""
        if self.running:
            return self
        self._start_process(
            lambda port: [
                self.binary,
                "--bind",
                self.host,
                "--port",
                str(port),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(self._pick_bus_port()),
                "--cluster-config-file",
                str(self.directory / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes" if self.appendonly else "no",
                "--appendfsync",
                "always",
            ],
            self._probe,
            what="answer PING",
            interval=0.02,
        )
        self._started = True
        return self

    def _pick_bus_port(self) -> int:
        # Each attempt of the first start picks a new one; a restart keeps it (nodes.conf
        # names it).
        if not self._started:
            self.bus_port = free_port()
        assert self.bus_port is not None
        return self.bus_port

    def kill(self) -> None:
        """SIGKILL (a crash, not a shutdown) and reap; the data dir is kept."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait(STOP_DEADLINE)
            wait_pid_gone(proc.pid, STOP_DEADLINE)


class RedisCluster(ServerGroup):
    """Six cluster nodes on loopback, 3 primaries with one replica each.

    Use as a context manager (start on enter; stop every node by PID and delete the temp dirs
    on exit, even when start-up failed half-way). ``url`` is the ``redis+cluster://`` store
    URL naming every node.

    Args:
        appendonly: run the nodes with ``appendonly yes`` and ``appendfsync always``.
        node_timeout_ms: ``cluster-node-timeout`` in milliseconds.
    """

    host = "127.0.0.1"

    def __init__(self, *, appendonly: bool = False, node_timeout_ms: int = NODE_TIMEOUT_MS) -> None:
        binary = find_redis_server()
        self.cli = find_redis_cli()
        self.nodes = [
            ClusterNode(binary, appendonly=appendonly, node_timeout_ms=node_timeout_ms)
            for _ in range(6)
        ]
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<port>,...`` naming all six nodes (once started)."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    def diagnostics(self) -> str:
        return "\n".join(log_tail(n.log_path, 15) for n in self.nodes)

    def start(self) -> RedisCluster:
        """Start the six nodes, create the cluster, wait until it is ``ok`` everywhere."""
        started = time.monotonic()
        for node in self.nodes:
            node.start()
        create = subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(n.address for n in self.nodes),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_DEADLINE,
        )
        if create.returncode != 0:
            pytest.fail(
                f"redis-cli --cluster create failed ({create.returncode}):\n"
                f"{create.stdout[-2000:]}{create.stderr[-2000:]}\n{self.diagnostics()}"
            )
        self.wait_ok(STARTUP_DEADLINE)
        self.startup_seconds = time.monotonic() - started
        return self

    def _not_ok(self) -> str | None:
        """Why the cluster is not ready yet, or ``None`` when it is."""
        for node in self.nodes:
            if not node.running:
                continue
            try:
                state = info_fields(node.command("CLUSTER", "INFO"))
                role = info_fields(node.command("INFO", "replication"))
            except OSError as exc:
                return f"{node.address}: {exc}"
            if state.get("cluster_state") != "ok":
                return f"{node.address}: cluster_state={state.get('cluster_state')}"
            if state.get("cluster_known_nodes") != str(len(self.nodes)):
                return f"{node.address}: knows {state.get('cluster_known_nodes')} nodes"
            if role.get("role") == "slave" and role.get("master_link_status") != "up":
                return f"{node.address}: replica link {role.get('master_link_status')}"
        return None

    def wait_ok(self, timeout: float) -> float:
        """Poll the nodes until every running one reports ``cluster_state:ok`` and every
        running replica is in sync with its primary; returns the seconds waited.

        Raises:
            pytest.fail.Exception: not ready within ``timeout`` seconds (with log tails).
        """
        started = time.monotonic()
        deadline = started + timeout
        reason = self._not_ok()
        while reason is not None:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"Redis Cluster not ready within {timeout:.0f} s ({reason}).\n"
                    f"{self.diagnostics()}"
                )
            time.sleep(0.05)
            reason = self._not_ok()
        return time.monotonic() - started

    def wait_failover(self, key: str, dead: ClusterNode, timeout: float) -> float:
        """Poll the running nodes until another one serves ``key``'s slot as primary (the
        cluster promoted ``dead``'s replica) and the cluster is ``ok`` again; returns the
        seconds waited.

        Raises:
            pytest.fail.Exception: no promotion within ``timeout`` seconds (with log tails).
        """
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                promoted = self.primary_for(key) is not dead
            except (AssertionError, OSError):  # the slot has no live primary yet
                promoted = False
            if promoted:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"No failover within {timeout:.0f} s.\n{self.diagnostics()}")
            time.sleep(0.05)
        self.wait_ok(max(1.0, deadline - time.monotonic()))
        return time.monotonic() - started

    def primary_for(self, key: str) -> ClusterNode:
        """The running node that currently serves ``key``'s slot as primary."""
        slot = int(self.running_nodes()[0].command("CLUSTER", "KEYSLOT", key)[1:].strip())
        for node in self.running_nodes():
            role = info_fields(node.command("INFO", "replication"))
            if role.get("role") != "master":
                continue
            for line in node.command("CLUSTER", "NODES").decode().splitlines():
                if "myself" not in line:
                    continue
                for part in line.split()[8:]:
                    low, _, high = part.partition("-")
                    if re.fullmatch(r"\d+", low) and int(low) <= slot <= int(high or low):
                        return node
        raise AssertionError(f"no running primary serves slot {slot}")

    def running_nodes(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.running]

    def members(self) -> list[ClusterNode]:
        return self.nodes
