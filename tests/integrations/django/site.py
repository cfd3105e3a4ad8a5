"""The Django sample site (``sample_projects/django_site``) run as a real server process:
``manage.py runserver`` (WSGI) or ``uvicorn django_site.asgi:application`` (ASGI), each on
``127.0.0.1:<a port it got>``, stopped by PID. Also a logged-in HTTP client for it."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx
import pytest

from tests.servers.deadlines import COMMAND_DEADLINE
from tests.servers.processes import start_process, stop_process

REPO = Path(__file__).resolve().parents[3]
SITE = REPO / "sample_projects" / "django_site"


class SampleSite:
    """One server process of the sample site, on a loopback port it really got (a taken port
    is detected and another one tried: ``start_process``).

    Args:
        server: ``"runserver"`` or ``"uvicorn"``.
        db_path: the SQLite database file (migrated with ``migrate()`` first).
        env: extra environment (``CHATAUTH_*`` settings).
    """

    def __init__(self, server: str, db_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.server = server
        self.port = 0  # known once started
        self.log_path = db_path.with_name(f"{server}-{secrets.token_hex(4)}.log")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CHATAUTH_", "DJANGO_"))}
        self.env = {**base, "DJANGO_DB_PATH": str(db_path), "PYTHONPATH": str(REPO), **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=SITE,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_DEADLINE,
        )

    def migrate(self) -> SampleSite:
        result = self.manage("migrate", "--no-input")
        if result.returncode != 0:
            pytest.fail(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")
        return self

    def _command(self, port: int) -> list[str]:
        if self.server == "runserver":
            return [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        command = [sys.executable, "-m", "uvicorn", "django_site.asgi:application"]
        return [*command, "--host", "127.0.0.1", "--port", str(port)]

    def start(self) -> SampleSite:
        """Start the server and wait until the login page answers; stopped again if not."""
        self._proc, self.port = start_process(
            self._command,
            self._login_page,
            name=f"the sample site ({self.server})",
            what="serve /accounts/login/",
            log_path=self.log_path,
            interval=0.1,
            cwd=SITE,
            env=self.env,
        )
        return self

    @staticmethod
    def _login_page(port: int) -> str | None:
        try:
            # A short timeout per probe: the probe is repeated until STARTUP_DEADLINE.
            response = httpx.get(f"http://127.0.0.1:{port}/accounts/login/", timeout=5)
        except httpx.TransportError as exc:
            return repr(exc)
        return None if response.status_code == 200 else f"answered {response.status_code}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def log_in(client: httpx.Client, username: str, password: str) -> None:
    """Log in through the site's real login form (CSRF token and all)."""
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    response = client.post(
        "/accounts/login/",
        data={
            "csrfmiddlewaretoken": csrf_token(page.text),
            "username": username,
            "password": password,
        },
    )
    assert response.status_code == 302, response.text[:500]


def log_out(client: httpx.Client) -> None:
    """Log out through the chat page's logout form (a POST, as Django 5 requires)."""
    page = client.get("/")
    response = client.post("/accounts/logout/", data={"csrfmiddlewaretoken": csrf_token(page.text)})
    assert response.status_code == 302, response.text[:500]
