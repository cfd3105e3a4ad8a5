"""The three sample projects, each run the way its README says, as a real server process.

Each :class:`SampleApp` knows its start-up commands, where its login form and chat page are,
and turns chatauth settings into the ``CHATAUTH_*`` environment variables the samples read.
:class:`AppServer` runs one on a ``127.0.0.1`` port it really got (a taken port is detected
and another one tried) and stops it by PID.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx
import pytest

from tests.servers.deadlines import COMMAND_DEADLINE
from tests.servers.processes import log_tail, start_process, stop_process

REPO = Path(__file__).resolve().parents[3]

#: Demo user every sample ships (the login page lists it) and its password.
DEMO_USER = "alice"
DEMO_PASSWORD = "wonderland"


@dataclass(frozen=True)
class SampleApp:
    """How to run one sample project and where its pages are.

    ``commands(port)`` gives the commands run in order from the repository root; the last one
    is the server, the ones before it must exit 0 (e.g. Django's ``migrate``).
    ``extra_env(workdir)`` adds variables the sample needs to keep its files in ``workdir``.
    """

    name: str
    package: str
    login_path: str
    chat_path: str
    commands: Callable[[int], Sequence[Sequence[str]]]
    extra_env: Callable[[Path], Mapping[str, str]] = field(default=lambda _w: {})

    @property
    def directory(self) -> Path:
        return REPO / "sample_projects" / self.package


def _starlette_commands(port: int) -> list[list[str]]:
    return [[sys.executable, "-m", "sample_projects.starlette_app", "--port", str(port)]]


def _flask_commands(port: int) -> list[list[str]]:
    return [
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "sample_projects.flask_app",
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-reload",
            "--no-debugger",
        ]
    ]


def _flask_env(workdir: Path) -> dict[str, str]:
    # Without these the sample would write its dev secrets into its instance folder.
    return {"FLASK_SECRET_KEY": os.urandom(24).hex()}


def _django_commands(port: int) -> list[list[str]]:
    manage = str(REPO / "sample_projects" / "django_site" / "manage.py")
    return [
        [sys.executable, manage, "migrate", "--no-input"],
        [sys.executable, manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
    ]


def _django_env(workdir: Path) -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": os.urandom(24).hex(),
        # runserver serves the static files (chat.js) only in debug mode.
        "DJANGO_DEBUG": "1",
        "DJANGO_DB_PATH": str(workdir / "db.sqlite3"),
    }


SAMPLE_APPS: dict[str, SampleApp] = {
    "starlette": SampleApp(
        name="starlette",
        package="starlette_app",
        login_path="/login",
        chat_path="/chat",
        commands=_starlette_commands,
    ),
    "django": SampleApp(
        name="django",
        package="django_site",
        login_path="/accounts/login/",
        chat_path="/chat/",
        commands=_django_commands,
        extra_env=_django_env,
    ),
    "flask": SampleApp(
        name="flask",
        package="flask_app",
        login_path="/login",
        chat_path="/",
        commands=_flask_commands,
        extra_env=_flask_env,
    ),
}


def settings_env(settings: Mapping[str, str]) -> dict[str, str]:
    """``{"provider": "matrix"}`` -> ``{"CHATAUTH_PROVIDER": "matrix"}``."""
    return {f"CHATAUTH_{key.upper()}": value for key, value in settings.items()}


class AppServer:
    """One sample app served by a real server process on a loopback port it got.

    Args:
        app: which sample.
        settings: chatauth settings, passed as ``CHATAUTH_*`` environment variables.
        workdir: a directory of its own (store file, database, server log).
    """

    def __init__(self, app: SampleApp, settings: Mapping[str, str], workdir: Path) -> None:
        self.app = app
        self.workdir = workdir
        self.port = 0  # known once started
        self.log_path = workdir / "server.log"
        # Only our variables: a CHATAUTH_* set in the developer's shell must not leak in, nor
        # a DJANGO_SETTINGS_MODULE (tox's Django envs set one) that would beat manage.py's.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CHATAUTH_") and k != "DJANGO_SETTINGS_MODULE"
        }
        env.update(
            {
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "CHATAUTH_STORE": f"sqlite:///{workdir / 'chatauth.sqlite3'}",
            }
        )
        env.update(app.extra_env(workdir))
        env.update(settings_env(settings))
        self.env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> AppServer:
        if not self.app.directory.is_dir():
            pytest.fail(
                f"The {self.app.name} sample project is missing: {self.app.directory} does not "
                "exist."
            )
        *setup, _ = self.app.commands(0)
        with open(self.log_path, "ab") as log:
            for command in setup:
                done = subprocess.run(
                    command,
                    cwd=REPO,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=COMMAND_DEADLINE,
                    check=False,
                )
                if done.returncode != 0:
                    pytest.fail(
                        f"{self.app.name}: {' '.join(command)} exited {done.returncode}.\n"
                        f"{log_tail(self.log_path)}"
                    )
        self._proc, self.port = start_process(
            lambda port: self.app.commands(port)[-1],
            self._login_page_answers,
            name=f"The {self.app.name} sample",
            what="answer",
            log_path=self.log_path,
            interval=0.1,
            cwd=REPO,
            env=self.env,
        )
        return self

    def _login_page_answers(self, port: int) -> str | None:
        try:
            # A short timeout per probe: the probe is repeated until STARTUP_DEADLINE.
            response = httpx.get(f"http://127.0.0.1:{port}{self.app.login_path}", timeout=5)
        except httpx.TransportError as exc:
            return repr(exc)
        if response.status_code == 200:
            return None
        return f"GET {self.app.login_path} answered {response.status_code}"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            stop_process(proc)

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<AppServer {self.app.name} {self.base_url}>"


class AppServers:
    """Starts each (app, settings) combination once per session; stops them all at the end."""

    def __init__(self) -> None:
        self._servers: dict[tuple[str, tuple[tuple[str, str], ...]], AppServer] = {}
        self._dirs: list[Path] = []

    def get(self, app: str, settings: Mapping[str, str]) -> AppServer:
        key = (app, tuple(sorted(settings.items())))
        server = self._servers.get(key)
        if server is None:
            workdir = Path(tempfile.mkdtemp(prefix=f"chatauth-{app}-sample-"))
            self._dirs.append(workdir)
            server = AppServer(SAMPLE_APPS[app], settings, workdir).start()
            self._servers[key] = server
        return server

    def close(self) -> None:
        """Stop every server (all of them, even if one fails to stop), then delete the dirs."""
        servers, self._servers = list(self._servers.values()), {}
        errors: list[BaseException] = []
        for server in servers:
            try:
                server.stop()
            except BaseException as exc:  # re-raised below, after the others are stopped
                errors.append(exc)
        for directory in self._dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if errors:
            raise errors[0]
