"""OS processes racing for one user's first token get one issued token (the ORM store's
cross-process lock), on SQLite and on PostgreSQL.

The race is made to happen, and the test checks that it did: the process that takes the
issue lock stays inside the provider call until every other process has reported finding the
lock taken, and each report's time must fall between the issuer's taking the lock and its
leaving the provider call (:mod:`tests.stores.handshake`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integrations.django.providers import issued
from tests.stores.handshake import assert_race_happened
from tests.stores.workers import REPO, Workers

PROVIDER = "tests.integrations.django.providers.CountingJWTProvider"
WORKER = [sys.executable, "-m", "tests.integrations.django.race_worker"]
DEADLINE = 180.0  # seconds for start-up, the race and the exit of every worker (loaded CI)


def run_workers(databases: dict[str, Any], tmp_path: Path, processes: int = 2) -> list[str]:
    count_file = tmp_path / "issues.log"
    handshake = tmp_path / "handshake"
    handshake.mkdir()
    chatauth = {
        "PROVIDER": PROVIDER,
        "JWT_SECRET": "race-secret-0123456789abcdef0123",
        "COUNT_FILE": str(count_file),
        "HANDSHAKE_DIR": str(handshake),
        "WAITERS": processes - 1,
    }
    base = {"databases": databases, "chatauth": chatauth}
    subprocess.run(
        [*WORKER, json.dumps({**base, "migrate": True})], cwd=REPO, check=True, timeout=120
    )
    argvs = [[*WORKER, json.dumps(base)] for _ in range(processes)]
    with Workers(argvs, logs=tmp_path, deadline=DEADLINE) as workers:
        workers.wait_ready()
        workers.go()
        fingerprints = workers.results()
    lines = issued(str(count_file))
    assert len(lines) == 1, lines
    # The race happened: while the one issuer held the lock, and before it left the provider
    # call, every other process tried the lock and found it taken.
    issuer = assert_race_happened(handshake, processes)
    assert lines[0].split()[0] == str(issuer)
    return fingerprints


def test_two_processes_on_sqlite_issue_one_token(tmp_path: Path) -> None:
    db = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db")}}
    fingerprints = run_workers(db, tmp_path)
    assert len(set(fingerprints)) == 1


@pytest.mark.postgres
def test_three_processes_on_postgres_issue_one_token(tmp_path: Path, postgres_server: Any) -> None:
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
