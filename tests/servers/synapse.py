"""A real Matrix Synapse homeserver for the test suite (SQLite, loopback, temp dir)."""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml

from chatauth.testing import canary
from tests.servers.deadlines import COMMAND_DEADLINE, REQUEST_DEADLINE
from tests.servers.processes import LazyTempDir, ServerProcess, log_tail

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SYNAPSE_VENV = REPO / ".tox" / "synapse-venv"
INSTALL_HINT = (
    "Matrix Synapse is not installed for the test suite. Run\n"
    "    python tests/servers/install_synapse.py\n"
    "(builds .tox/synapse-venv with matrix-synapse and authlib), or set SYNAPSE_PYTHON to an\n"
    "interpreter that can 'import synapse, authlib'."
)
# Every limiter a test can trip by logging in, registering, messaging, creating rooms or
# joining in a tight loop. Names from synapse/config/ratelimiting.py; unknown keys are ignored by
# older Synapse versions, so listing a few extra is harmless.
_UNLIMITED = {"per_second": 100000, "burst_count": 100000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {
        "address": _UNLIMITED,
        "account": _UNLIMITED,
        "failed_attempts": _UNLIMITED,
    },
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_invites": {
        "per_room": _UNLIMITED,
        "per_user": _UNLIMITED,
        "per_issuer": _UNLIMITED,
    },
    "rc_third_party_invite": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
}

# interpreter -> (config dict from --generate-config, signing key bytes); see _generate_config.
_GENERATED: dict[str, tuple[dict[str, Any], bytes]] = {}
# Interpreters already seen to import synapse (the probe costs a second on a slow machine).
_IMPORTS_SYNAPSE: set[str] = set()


def _can_import_synapse(python: str) -> bool:
    if python in _IMPORTS_SYNAPSE:
        return True
    try:
        probe = subprocess.run(
            [python, "-c", "import synapse"],
            capture_output=True,
            check=False,
            timeout=COMMAND_DEADLINE,
        )
    except OSError:  # not there or not executable
        return False
    if probe.returncode == 0:
        _IMPORTS_SYNAPSE.add(python)
    return probe.returncode == 0


def find_synapse_python() -> str:
    """The interpreter that runs the homeserver; ``pytest.fail`` with an install hint if none.

    Order: ``$SYNAPSE_PYTHON``, ``<repo>/.tox/synapse-venv/bin/python``, the current interpreter.
    """
    configured = os.environ.get("SYNAPSE_PYTHON")
    if configured:
        if not _can_import_synapse(configured):
            pytest.fail(f"SYNAPSE_PYTHON={configured} cannot 'import synapse'.\n{INSTALL_HINT}")
        return configured
    venv_python = DEFAULT_SYNAPSE_VENV / "bin" / "python"
    if venv_python.exists():
        if not _can_import_synapse(str(venv_python)):
            pytest.fail(f"{venv_python} exists but cannot 'import synapse'.\n{INSTALL_HINT}")
        return str(venv_python)
    if _can_import_synapse(sys.executable):
        return sys.executable
    pytest.fail(INSTALL_HINT)


class SynapseServer(ServerProcess):
    """A Synapse homeserver on ``127.0.0.1:<a port it got>`` with its data in a temp dir.

    ``start()`` generates the config (first time only), launches the homeserver, waits for
    ``/health`` and registers an admin user through shared-secret registration. ``stop()``
    ends the process by PID and keeps the data; ``restart()`` brings it back on the same port
    with the same data (the admin token stays valid). Used as a context manager it starts on
    enter and on exit stops and deletes the temp dir.

    Attributes: ``base_url``, ``port``, ``server_name``, ``admin_user_id``, ``admin_token``,
    ``jwt_secret``, ``jwt_algorithm``, ``registration_shared_secret``, ``pid``, ``directory``,
    ``config_path``, ``log_path``.

    ``extra_config`` is applied last to the homeserver config; mapping values are merged one
    level deep into the generated ones (``{"jwt_config": {"audiences": ["app"]}}`` keeps the
    secret).
    """

    server_name = "localhost"
    jwt_algorithm = "HS256"
    name = "Synapse"

    def __init__(
        self,
        *,
        python: str | None = None,
        extra_config: Mapping[str, Any] | None = None,
        admin_username: str = "admin",
        jwt_secret: str | None = None,
    ) -> None:
        self.python = python or find_synapse_python()
        self.extra_config = dict(extra_config or {})
        self.admin_username = admin_username
        self.admin_user_id = f"@{admin_username}:{self.server_name}"
        self._tmp = LazyTempDir("chatauth-synapse-")
        self.jwt_secret = jwt_secret or canary.secret("synapse-jwt-secret", random=True)
        self.registration_shared_secret = canary.secret(
            "synapse-registration-shared-secret", random=True
        )
        self.admin_token: str = ""
        self.startup_seconds: float | None = None

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` (once started)."""
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"

    @property
    def stdout_path(self) -> Path:
        return self.directory / "stdout.log"

    def start(self) -> SynapseServer:
        """Start the homeserver (generating the config on first use) and wait until healthy."""
        if self.running:
            return self
        if not self.config_path.exists():
            self._write_config()
        started = time.monotonic()
        self._start_process(
            self._command,
            self._healthy,
            what="become healthy",
            interval=0.1,
            output=self.stdout_path,
        )
        self.startup_seconds = time.monotonic() - started
        if not self.admin_token:
            try:
                self.admin_token = self.register_user(self.admin_username, admin=True)
            except BaseException:
                self.stop()
                raise
        return self

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<SynapseServer {where} pid={self.pid}>"

    # -- config --------------------------------------------------------------------------

    def _generate_config(self) -> dict[str, Any]:
        """Synapse's own generated config (as a dict), with this server's signing key on disk.

        Generating takes several seconds (it imports all of Synapse), so the first result per
        interpreter is cached and later servers reuse it with fresh secrets and paths.
        """
        signing_key_path = self.directory / f"{self.server_name}.signing.key"
        cached = _GENERATED.get(self.python)
        if cached is None:
            generated = subprocess.run(
                [
                    self.python,
                    "-m",
                    "synapse.app.homeserver",
                    "--generate-config",
                    "--server-name",
                    self.server_name,
                    "--report-stats=no",
                    "-c",
                    str(self.config_path),
                    "--config-directory",
                    str(self.directory),
                    "--data-directory",
                    str(self.directory / "data"),
                ],
                cwd=self.directory,
                capture_output=True,
                text=True,
                check=False,
                timeout=COMMAND_DEADLINE,
            )
            if generated.returncode != 0:
                pytest.fail(
                    "synapse --generate-config failed "
                    f"(exit {generated.returncode}):\n{generated.stdout}\n{generated.stderr}"
                )
            config: dict[str, Any] = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
            key = Path(config["signing_key_path"]).read_bytes()
            _GENERATED[self.python] = (copy.deepcopy(config), key)
        else:
            config, key = copy.deepcopy(cached[0]), cached[1]
            signing_key_path.write_bytes(key)
            # Secrets Synapse generated for the cached config must not be shared between servers.
            config["macaroon_secret_key"] = secrets.token_urlsafe(32)
            config["form_secret"] = secrets.token_urlsafe(32)
        config["signing_key_path"] = str(signing_key_path)
        return config

    def _write_config(self) -> None:
        data_dir = self.directory / "data"
        config = self._generate_config()
        config.update(
            {
                "server_name": self.server_name,
                "listeners": [
                    {
                        "port": 0,  # set by _command() on each start
                        "bind_addresses": ["127.0.0.1"],
                        "type": "http",
                        "tls": False,
                        "x_forwarded": False,
                        "resources": [{"names": ["client"], "compress": False}],
                    }
                ],
                "database": {
                    "name": "sqlite3",
                    "args": {"database": str(data_dir / "homeserver.db")},
                },
                "media_store_path": str(data_dir / "media_store"),
                "pid_file": str(data_dir / "homeserver.pid"),
                "log_config": str(self._write_log_config()),
                "registration_shared_secret": self.registration_shared_secret,
                "enable_registration": False,
                "report_stats": False,
                "trusted_key_servers": [],
                "suppress_key_server_warning": True,
                "jwt_config": {
                    "enabled": True,
                    "secret": self.jwt_secret,
                    "algorithm": self.jwt_algorithm,
                },
                # Presence and the stats/metrics loops only add background work to a test server.
                "presence": {"enabled": False},
                "enable_metrics": False,
                **RATE_LIMITS,
            }
        )
        for key, value in self.extra_config.items():
            # One level of merging, so {"jwt_config": {"issuer": ...}} keeps the secret.
            if isinstance(value, Mapping) and isinstance(config.get(key), dict):
                config[key] = {**config[key], **value}
            else:
                config[key] = value
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")

    def _command(self, port: int) -> list[str]:
        """The homeserver command, its listener set to ``port`` in the config first (a start
        whose port was taken is retried on another one with the same config and data)."""
        config = yaml.safe_load(self.config_path.read_text(encoding="utf-8"))
        config["listeners"][0]["port"] = port
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return [self.python, "-m", "synapse.app.homeserver", "-c", str(self.config_path)]

    def _write_log_config(self) -> Path:
        # A plain FileHandler (not the generated buffered one) so the tail we print on a failed
        # start is complete, and nothing reaches the test output.
        log_config = {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                    "%(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "loggers": {"synapse.storage.SQL": {"level": "INFO"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }
        path = self.directory / "log.config.yaml"
        path.write_text(yaml.safe_dump(log_config, sort_keys=False), encoding="utf-8")
        return path

    # -- readiness -----------------------------------------------------------------------

    def diagnostics(self, lines: int = 40) -> str:
        """The tails of the homeserver's stdout/stderr and log file, for error messages."""
        return f"{log_tail(self.stdout_path, lines)}\n{log_tail(self.log_path, lines)}"

    def _healthy(self) -> str | None:
        try:
            # A short timeout per probe: the probe is repeated until STARTUP_DEADLINE.
            response = httpx.get(f"{self.base_url}/health", timeout=2.0)
        except httpx.TransportError as exc:
            return repr(exc)
        return None if response.status_code == 200 else f"/health answered {response.status_code}"

    # -- helpers for tests ---------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def register_user(
        self, username: str, *, admin: bool = False, password: str | None = None
    ) -> str:
        """Create ``@username:localhost`` by shared-secret registration; return its token."""
        password = password or secrets.token_urlsafe(16)
        endpoint = self.url("/_synapse/admin/v1/register")
        nonce_response = httpx.get(endpoint, timeout=REQUEST_DEADLINE)
        nonce_response.raise_for_status()
        nonce = nonce_response.json()["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        for part in (nonce, username, password):
            mac.update(part.encode())
            mac.update(b"\x00")
        mac.update(b"admin" if admin else b"notadmin")
        response = httpx.post(
            endpoint,
            json={
                "nonce": nonce,
                "username": username,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            },
            timeout=REQUEST_DEADLINE,
        )
        if response.status_code != 200:
            pytest.fail(
                f"shared-secret registration of {username!r} failed: "
                f"{response.status_code} {response.text}"
            )
        return str(response.json()["access_token"])

    @staticmethod
    def _auth(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def whoami(self, token: str) -> httpx.Response:
        """``GET /_matrix/client/v3/account/whoami`` with ``token``."""
        return httpx.get(
            self.url("/_matrix/client/v3/account/whoami"),
            headers=self._auth(token),
            timeout=REQUEST_DEADLINE,
        )

    def create_room(self, token: str, **body: Any) -> str:
        """Create a room as the token's user and return its room ID (fails the test if not)."""
        response = httpx.post(
            self.url("/_matrix/client/v3/createRoom"),
            headers=self._auth(token),
            json=body,
            timeout=REQUEST_DEADLINE,
        )
        if response.status_code != 200:
            pytest.fail(f"createRoom failed: {response.status_code} {response.text}")
        return str(response.json()["room_id"])

    def send_message(self, token: str, room_id: str, body: str) -> httpx.Response:
        """Send an ``m.text`` message; the raw response so tests can assert on failures."""
        txn_id = uuid.uuid4().hex
        return httpx.put(
            self.url(
                f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message/{txn_id}"
            ),
            headers=self._auth(token),
            json={"msgtype": "m.text", "body": body},
            timeout=REQUEST_DEADLINE,
        )
