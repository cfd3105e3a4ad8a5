"""The Django sample site (``sample_projects/django_site``) run as a real server process:
``manage.py runserver`` (WSGI) or ``uvicorn django_site.asgi:application`` (ASGI), each on
``127.0.0.1:<free port>``, stopped by PID. Also a logged-in HTTP client for it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.servers.ports import free_port
from tests.servers.processes import stop_process

REPO = Path(__file__).resolve().parents[3]
SITE = REPO / "sample_projects" / "django_site"
START_TIMEOUT = 60.0


class SampleSite:
    """One server process of the sample site.

    Args:
        server: ``"runserver"`` or ``"uvicorn"``.
        db_path: the SQLite database file (migrated with ``migrate()`` first).
        env: extra environment (``CHATAUTH_*`` settings).
    """

    def __init__(self, server: str, db_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.server = server
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = db_path.with_name(f"{server}-{self.port}.log")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("CHATAUTH_", "DJANGO_"))}
        self.env = {**base, "DJANGO_DB_PATH": str(db_path), "PYTHONPATH": str(REPO), **(env or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=SITE,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def migrate(self) -> SampleSite:
        result = self.manage("migrate", "--no-input")
        if result.returncode != 0:
            pytest.fail(f"manage.py migrate failed:\n{result.stdout}\n{result.stderr}")
        return self

    def start(self) -> SampleSite:
        if self.server == "runserver":
            command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}"]
            command.append("--noreload")
        else:
            command = [sys.executable, "-m", "uvicorn", "django_site.asgi:application"]
            command += ["--host", "127.0.0.1", "--port", str(self.port)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            command, cwd=SITE, env=self.env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self.stop()
                pytest.fail(f"the sample site ({self.server}) exited:\n{self.log()}")
            try:
                if httpx.get(self.base_url + "/accounts/login/", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"the sample site ({self.server}) did not start:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc, 10)  # type: ignore[arg-type]
        if self._log is not None:
            self._log.close()
            self._log = None


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
