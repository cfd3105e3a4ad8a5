"""A real PostgreSQL cluster for the test suite (Debian's packages, loopback, temp dir).

Uses only the server's own binaries (``initdb``, ``pg_ctl``, ``psql``, ``createdb``), so the
fixture needs no Python driver: the store tests must prove chatauth's ``postgres`` extra is
enough.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.servers.deadlines import COMMAND_DEADLINE, REQUEST_DEADLINE, STOP_DEADLINE
from tests.servers.processes import LazyTempDir, ServerProcess, stop_process

INSTALL_HINT = "PostgreSQL server binaries not found. Install them: apt-get install -y postgresql"
SYSTEM_USER = "postgres"
TOOLS = ("initdb", "postgres", "pg_ctl", "pg_isready", "psql", "createdb")


def find_postgres_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` (or ``$PG_BINDIR``); fail if none."""
    configured = os.environ.get("PG_BINDIR")
    candidates = [configured] if configured else []

    def version(path: str) -> tuple[int, ...]:
        match = re.search(r"/postgresql/([\d.]+)/bin", path)
        return tuple(int(p) for p in match.group(1).split(".")) if match else (0,)

    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if all((bindir / tool).is_file() for tool in TOOLS):
            return bindir
    pytest.fail(f"{INSTALL_HINT} (looked in {candidates or '/usr/lib/postgresql/*/bin'})")


class PostgresServer(ServerProcess):
    """A throw-away PostgreSQL cluster on ``127.0.0.1:<a port it got>``, trust authentication.

    ``initdb`` refuses to run as root, so when we are root the data dir belongs to the
    ``postgres`` system user and the server commands run as that user. Clients connect
    over TCP as the database superuser ``postgres`` without a password.

    Attributes: ``host``, ``port``, ``user``, ``pid`` (the postmaster), ``directory``,
    ``data_dir``, ``log_path``, ``bindir``. Methods: ``dsn(dbname)``, ``psql(sql, dbname)``,
    ``create_database(name)``, ``start()``, ``stop()``, ``restart()``.
    """

    user = "postgres"
    name = "postgres"

    def __init__(self, *, bindir: Path | None = None) -> None:
        self.bindir = bindir or find_postgres_bindir()
        self.startup_seconds: float | None = None
        # initdb and the postmaster refuse to run as root: as root, they run as the postgres
        # system user (like `runuser -u postgres`) in a temp dir that user owns.
        self._as_postgres: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                pytest.fail(f"running as root but there is no '{SYSTEM_USER}' user. {INSTALL_HINT}")
            self._as_postgres = {
                "user": account.pw_uid,
                "group": account.pw_gid,
                "extra_groups": [],
            }
        self._tmp = LazyTempDir("chatauth-postgres-", on_create=self._give_to_postgres)

    def _give_to_postgres(self, path: Path) -> None:
        if self._as_postgres:
            os.chown(path, self._as_postgres["user"], self._as_postgres["group"])

    def _run_server_tool(
        self, *args: str, timeout: float = COMMAND_DEADLINE
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=self.directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=self._env(),
            **self._as_postgres,
        )

    @staticmethod
    def _env() -> dict[str, str]:
        # Stray PG* variables (PGHOST, PGDATABASE, ...) would redirect our commands elsewhere.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        return self.directory / "postgres.log"

    def start(self) -> PostgresServer:
        """``initdb`` (first time only), then the postmaster; waits until it accepts queries."""
        if self.running:
            return self
        started = time.monotonic()
        if not self.data_dir.exists():
            init = self._run_server_tool(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                self.user,
                "-E",
                "UTF8",
                "--locale=C",
                # Durability of a throw-away cluster is irrelevant; skipping fsync saves seconds.
                "--no-sync",
            )
            if init.returncode != 0:
                pytest.fail(
                    f"initdb failed (exit {init.returncode}):\n{init.stdout}\n{init.stderr}"
                )
        # The postmaster runs in the foreground as our child rather than through `pg_ctl start`:
        # pg_ctl daemonizes it, and where PID 1 does not reap orphans (this VM, many containers)
        # every stopped cluster would linger as a zombie. As our child we reap it in stop().
        self._start_process(
            lambda port: [
                str(self.bindir / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(port),
                "-k",
                str(self.directory),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            self._ready,
            what="accept connections",
            interval=0.05,
            env=self._env(),
            **self._as_postgres,
        )
        self.startup_seconds = time.monotonic() - started
        return self

    def _ready(self) -> str | None:
        # A short connect timeout per probe: the probe is repeated until STARTUP_DEADLINE.
        ready = self._client("pg_isready", "-q", "-t", "2")
        return None if ready.returncode == 0 else f"pg_isready exited {ready.returncode}"

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        """``pg_ctl stop -m fast``, then reap the postmaster (SIGKILL if it does not exit)."""
        if proc.poll() is None:
            self._run_server_tool(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "fast",
                "-w",
                "-t",
                str(int(STOP_DEADLINE)),
                "stop",
                timeout=STOP_DEADLINE + 10,
            )
            # Also covers a failed pg_ctl: SIGTERM (smart shutdown), then SIGKILL.
            stop_process(proc, STOP_DEADLINE)

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._port is not None else "not started"
        return f"<PostgresServer {where} pid={self.pid}>"

    # -- client side ---------------------------------------------------------------------

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def _client(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(self.bindir / tool),
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                self.user,
                *args,
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=REQUEST_DEADLINE,
            env=self._env(),
        )

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run ``sql`` with ``psql`` (unaligned, tuples only) and return its output."""
        result = self._client(
            "psql", "-X", "-v", "ON_ERROR_STOP=1", "-A", "-t", "-d", dbname, "-c", sql
        )
        if result.returncode != 0:
            pytest.fail(f"psql {sql!r} failed (exit {result.returncode}):\n{result.stderr}")
        return result.stdout

    def create_database(self, name: str) -> str:
        """``createdb name``; returns ``dsn(name)``."""
        result = self._client("createdb", name)
        if result.returncode != 0:
            pytest.fail(f"createdb {name!r} failed (exit {result.returncode}):\n{result.stderr}")
        return self.dsn(name)
