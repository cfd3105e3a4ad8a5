"""``--loop SECONDS`` on the sweep and revoke-pending commands of Django and Flask, as the core
``chatauth`` command has it (tests/stores/test_redis_cli.py): a worker runs them until
SIGTERM, then exits 0. Run as the sample apps' own commands, in real processes, each stopped
by its PID in the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from chatauth.maintenance import EXIT_OK
from tests.e2e.browser.apps import REPO
from tests.servers.deadlines import COMMAND_DEADLINE, STOP_DEADLINE
from tests.servers.processes import stop_process

MANAGE = str(REPO / "sample_projects" / "django_site" / "manage.py")


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CHATAUTH_") and k != "DJANGO_SETTINGS_MODULE"
    }
    return {
        **env,
        "PYTHONUNBUFFERED": "1",
        "CHATAUTH_STORE": f"sqlite:///{tmp_path / 'chatauth.sqlite3'}",
        "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "DJANGO_SECRET_KEY": "loop-test-not-a-secret",
        "FLASK_SECRET_KEY": "loop-test-not-a-secret",
        # Else the Flask sample keeps a generated one in its instance folder.
        "CHATAUTH_JWT_SECRET": "loop-test-jwt-secret-0123456789abcdef",
    }


#: One command per framework (the two commands of one framework share its loop helper).
COMMANDS = {
    "django-sweep": ([MANAGE, "chatauth_sweep"], "sweep: swept=0 "),
    "flask-revoke-pending": (
        ["-m", "flask", "--app", "sample_projects.flask_app", "chatauth", "revoke-pending"],
        "revoke-pending: revoked=0 ",
    ),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_loop_runs_until_sigterm_then_exits_0(name: str, tmp_path: Path) -> None:
    command, line = COMMANDS[name]
    env = _env(tmp_path)
    if name.startswith("django"):
        subprocess.run(
            [sys.executable, MANAGE, "migrate", "--no-input"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=COMMAND_DEADLINE,
        )
    worker = subprocess.Popen(
        [sys.executable, *command, "--loop", "0.2"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert worker.stdout is not None
        runs = 0
        while runs < 2:  # two runs: the second proves it kept running
            text = worker.stdout.readline()
            assert text, f"{name} ended early (exit {worker.poll()})"
            runs += text.startswith(line)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(STOP_DEADLINE) == EXIT_OK
    finally:
        stop_process(worker)
        if worker.stdout is not None:
            worker.stdout.close()
