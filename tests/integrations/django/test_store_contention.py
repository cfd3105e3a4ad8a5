"""DjangoStore on a locked SQLite database: four OS processes on one file, a statement retried
until another connection lets go, and the bound after which the store gives up."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import stamina
from chatauth.integrations.django.store import DjangoStore
from django.core.management import call_command
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from chatauth.errors import StoreUnavailableError
from chatauth.tokens import ChatToken, SessionKey
from tests.stores import hammer
from tests.stores.workers import REPO

ALIAS = "chatauth_file"
BUSY_TIMEOUT = 0.2  # seconds: the connection's own wait (Django's OPTIONS["timeout"])
KEY = SessionKey("jwt", "user-1", "s")


NOW = datetime.now(timezone.utc).replace(microsecond=0)


def make_token() -> ChatToken:
    return ChatToken(
        value="t", uid="user-1", provider="jwt", issued_at=NOW, expires_at=NOW + timedelta(hours=1)
    )


@pytest.fixture
def file_db(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """A Django SQLite database in a real file (the test database is in memory, where SQLite
    locks tables in its shared cache instead of the file), under the alias ``ALIAS``."""
    path = tmp_path / "app.sqlite3"
    config = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {"timeout": BUSY_TIMEOUT},
    }
    connections.settings[ALIAS] = connections.configure_settings({"default": {}, ALIAS: config})[
        ALIAS
    ]
    try:
        with django_db_blocker.unblock():
            call_command("migrate", "chatauth", database=ALIAS, verbosity=0)
            yield path
            connections[ALIAS].close()
    finally:
        del connections[ALIAS]
        del connections.settings[ALIAS]


@pytest.fixture
def holder(file_db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock (``BEGIN IMMEDIATE``)."""
    db = sqlite3.connect(file_db, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
        db.close()


def test_statements_on_an_unlocked_database_open_no_retry_context(
    file_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DjangoStore(using=ALIAS)
    contexts: list[dict[str, Any]] = []
    original = stamina.retry_context

    def noted(**kwargs: Any) -> Any:
        contexts.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(stamina, "retry_context", noted)
    store.set(KEY, make_token())
    for _ in range(3):
        assert store.get(KEY) == make_token()
    assert contexts == []  # the cached read is the statement alone


def test_a_cached_read_is_one_statement_with_an_aware_served_time(file_db: Path) -> None:
    store = DjangoStore(using=ALIAS)
    store.set(KEY, make_token())
    with CaptureQueriesContext(connections[ALIAS]) as queries:
        found = store.get(KEY)
        missing = store.get(SessionKey("jwt", "user-1", "other"))
    assert found == make_token() and missing is None
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["SELECT", "SELECT"]
    assert found.served_at is not None and found.served_at.tzinfo == timezone.utc
    assert abs(found.served_at - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_a_statement_refused_while_locked_is_retried_once_the_lock_is_gone(
    holder: sqlite3.Connection, real_retries: list[Any]
) -> None:
    store = DjangoStore(using=ALIAS)

    def release(details: stamina.instrumentation.RetryDetails) -> None:
        # Called by stamina after the first attempt failed and before the retry: the other
        # connection lets go exactly then, with no timing guess.
        real_retries.append(details)
        holder.execute("ROLLBACK")

    stamina.instrumentation.set_on_retry_hooks([release])
    store.set(KEY, make_token())
    assert store.get(KEY) == make_token()
    [retry] = real_retries
    assert "database is locked" in str(retry.caused_by)


def test_a_lock_held_too_long_is_store_unavailable_within_the_bound(
    holder: sqlite3.Connection, real_retries: list[Any]
) -> None:
    store = DjangoStore(using=ALIAS, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as raised:
        store.set(KEY, make_token())
    waited = time.monotonic() - started
    assert raised.value.retry_after >= 1
    assert len(real_retries) >= 1  # it did retry, not give up at the first refusal
    # Retries for `timeout`, then at most one more busy wait and one backoff pause (0.5 s);
    # the upper limit is generous for a loaded machine.
    assert 0.5 <= waited < 0.5 + BUSY_TIMEOUT + 0.5 + 5, waited


def test_inside_the_apps_transaction_a_locked_statement_is_not_retried(
    holder: sqlite3.Connection, real_retries: list[Any]
) -> None:
    store = DjangoStore(using=ALIAS)
    with pytest.raises(StoreUnavailableError), transaction.atomic(using=ALIAS):
        store.set(KEY, make_token())
    assert real_retries == []


def test_four_processes_hammering_one_database_never_see_the_store_unavailable(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "shared.sqlite3")
    migrate = {"store": "django", "path": path, "migrate": True}
    subprocess.run(
        [sys.executable, "-m", "tests.stores.hammer", json.dumps(migrate)],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    started = time.monotonic()
    # 40 cycles (about 300 writes) per worker: each Django write commits with fsyncs in
    # SQLite's default rollback journal, several times slower than SQLiteStore's WAL.
    results = hammer.run("django", path, logs=tmp_path, cycles=40)
    took = time.monotonic() - started
    assert [r["errors"] for r in results] == [[]] * 4
    overlapping = hammer.overlapping_writes(results)
    writes = sum(len(r["writes"]) for r in results)
    # The workers really wrote at the same time (not one after another).
    assert overlapping >= writes // 10, (overlapping, writes, took)
