"""SQLiteStore under contention: four OS processes on one file, and a lock held for too long."""

from __future__ import annotations

import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import stamina

from chatauth.errors import StoreUnavailableError
from chatauth.stores.sqlite import SQLiteStore
from chatauth.tokens import ChatToken, SessionKey
from tests.stores import hammer

KEY = SessionKey("p", "u1", "s")


NOW = datetime.now(timezone.utc).replace(microsecond=0)


def make_token() -> ChatToken:
    return ChatToken(
        value="t", uid="u1", provider="p", issued_at=NOW, expires_at=NOW + timedelta(hours=1)
    )


def test_four_processes_hammering_one_file_never_see_the_store_unavailable(
    tmp_path: Path,
) -> None:
    # The workers create the file and its tables themselves, all at once, as the workers of a
    # freshly deployed app do.
    started = time.monotonic()
    results = hammer.run("sqlite", str(tmp_path / "shared.db"), logs=tmp_path)
    took = time.monotonic() - started
    assert [r["errors"] for r in results] == [[]] * 4
    overlapping = hammer.overlapping_writes(results)
    writes = sum(len(r["writes"]) for r in results)
    # The workers really wrote at the same time (not one after another).
    assert overlapping >= writes // 10, (overlapping, writes, took)


def test_a_lock_held_too_long_is_store_unavailable_after_the_timeout(
    tmp_path: Path, real_retries: list[Any]
) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStore(path, timeout=0.5)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process's write that does not end
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as raised:
            store.set(KEY, make_token())
        waited = time.monotonic() - started
        assert store.get(KEY) is None  # readers are not blocked (WAL)
    finally:
        holder.close()
        store.close()
    assert "database is locked" in str(raised.value)
    # SQLite's busy wait used the whole budget, so no retry was left; the upper limit is
    # generous for a loaded machine.
    assert 0.45 <= waited < 0.5 + 5, waited


def test_a_refused_write_is_retried_in_a_fresh_transaction(tmp_path: Path) -> None:
    # Under the suite's instant-retry mode (3 attempts, no pauses) the retry comes at once
    # after the first attempt's busy wait, so a hook can release the lock in between.
    path = tmp_path / "s.db"
    store = SQLiteStore(path, timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    retries: list[stamina.instrumentation.RetryDetails] = []

    def release(details: stamina.instrumentation.RetryDetails) -> None:
        retries.append(details)
        if holder.in_transaction:
            holder.execute("ROLLBACK")

    stamina.instrumentation.set_on_retry_hooks([release])
    try:
        holder.execute("BEGIN IMMEDIATE")
        store.set(KEY, make_token())
        assert store.pop(KEY) == make_token()
        assert store.get(KEY) is None
    finally:
        stamina.instrumentation.set_on_retry_hooks(None)
        holder.close()
        store.close()
    [retry] = retries
    assert "database is locked" in str(retry.caused_by)
