"""Two OS processes racing for one user's first token get one issued token (the ORM store's
cross-process lock), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.django.providers import issued

REPO = Path(__file__).resolve().parents[3]
PROVIDER = "tests.integrations.django.providers.CountingJWTProvider"


def run_workers(databases: dict[str, Any], tmp_path: Path, processes: int = 2) -> list[str]:
    count_file = tmp_path / "issues.log"
    chatauth = {
        "PROVIDER": PROVIDER,
        "JWT_SECRET": "race-secret-0123456789abcdef0123",
        "COUNT_FILE": str(count_file),
        # Holding the issue open makes the other process arrive while the lock is taken.
        "ISSUE_DELAY": 0.5,
    }
    base = {"databases": databases, "chatauth": chatauth}
    worker = [sys.executable, "-m", "tests.integrations.django.race_worker"]
    subprocess.run([*worker, json.dumps({**base, "migrate": True})], cwd=REPO, check=True)
    # Start together: each worker reports ready after its Django set-up, then waits for "go".
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        subprocess.Popen(
            [*worker, json.dumps({**base, "gate": str(gate)})],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    deadline = time.monotonic() + 120
    while len(list(gate.glob("ready-*"))) < processes:
        assert all(p.poll() is None for p in procs), "a worker died during start-up"
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.02)
    (gate / "go").touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(out.strip())
    lines = issued(str(count_file))
    assert len({line.split()[0] for line in lines}) <= 1, "two processes issued"
    assert len(lines) == 1, lines
    return outputs


def test_two_processes_on_sqlite_issue_one_token(tmp_path: Path) -> None:
    db = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db")}}
    fingerprints = run_workers(db, tmp_path)
    assert len(set(fingerprints)) == 1


@pytest.mark.postgres
def test_two_processes_on_postgres_issue_one_token(tmp_path: Path, postgres_server: Any) -> None:
    name = f"race_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    db = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "USER": postgres_server.user,
            "HOST": postgres_server.host,
            "PORT": str(postgres_server.port),
        }
    }
    fingerprints = run_workers(db, tmp_path, processes=3)
    assert len(set(fingerprints)) == 1
