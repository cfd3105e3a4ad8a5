"""One worker of the store contention tests: ``python -m tests.stores.hammer CONFIG``.

CONFIG is JSON: ``{"store": "sqlite" | "django", "path": <SQLite file>, "worker": <n>,
"cycles": <count>}``, plus ``"migrate": true`` to only create the Django tables and exit.

The worker opens its store (``SQLiteStore(path)``, or ``DjangoStore`` on a Django SQLite
database at ``path``), passes the gate of :mod:`tests.stores.workers`, then runs ``cycles``
cycles of set / get / pop on keys every worker shares, a try-lock / set / unlock on a shared
lock key, ``store.lock`` on its own key, and a pending revocation add / list / remove. A
:class:`~chatauth.errors.StoreUnavailableError` is recorded, not raised, so the test sees all
of them. It prints one JSON line::

    {"worker": n, "errors": [...], "retries": <stamina retries seen>,
     "writes": [[start, end], ...], "locks_won": <count>}

``writes`` are the ``time.monotonic()`` intervals of the worker's write calls; on Linux that
clock is CLOCK_MONOTONIC, one clock for every process of the machine, so the test can tell
whether two workers were writing at the same moment.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import stamina

from chatauth.errors import StoreUnavailableError
from chatauth.stores.base import BaseStore
from chatauth.tokens import ChatToken, SessionKey


def _django_store(path: str, *, migrate: bool) -> BaseStore | None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": path}},
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "chatauth.integrations.django",
        ],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        return None
    from chatauth.integrations.django.store import DjangoStore

    return DjangoStore()


def _open(config: dict[str, Any]) -> BaseStore | None:
    if config["store"] == "django":
        return _django_store(config["path"], migrate=bool(config.get("migrate")))
    from chatauth.stores.sqlite import SQLiteStore

    return SQLiteStore(config["path"])


def _token(worker: int, cycle: int) -> ChatToken:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return ChatToken(
        value=f"w{worker}-c{cycle}",
        uid="shared-user",
        provider="p",
        issued_at=now,
        expires_at=now + timedelta(hours=1),
    )


def hammer(store: BaseStore, worker: int, cycles: int) -> dict[str, Any]:
    """Run the cycles on ``store``; the result line's fields (see the module docstring)."""
    errors: list[str] = []
    writes: list[tuple[float, float]] = []
    locks_won = 0

    def write(call: Any, *args: Any) -> Any:
        start = time.monotonic()
        try:
            return call(*args)
        except StoreUnavailableError as exc:
            errors.append(f"{call.__name__}: {exc}")
            return None
        finally:
            writes.append((start, time.monotonic()))

    own = SessionKey("p", f"own-user-{worker}", "s")
    for cycle in range(cycles):
        shared = SessionKey("p", "shared-user", f"s{cycle % 3}")
        token = _token(worker, cycle)
        write(store.set, shared, token)
        try:
            store.get(shared)
        except StoreUnavailableError as exc:
            errors.append(f"get: {exc}")
        write(store.pop, shared)
        write(store.set, shared, token)
        lock_key = SessionKey("p", "lock-user", f"l{cycle}")
        owner = f"worker-{worker}"
        if write(store._try_lock, lock_key, owner, 30.0):
            locks_won += 1
            write(store.set, lock_key, token)
            write(store._unlock, lock_key, owner)
        try:
            with store.lock(own, ttl=30, wait=30):
                write(store.set, own, token)
        except StoreUnavailableError as exc:
            errors.append(f"lock: {exc}")
        if cycle % 5 == 0:
            write(store.add_pending, token, "HAMMER")
            try:
                for entry in store.pending(limit=5):
                    write(store.remove_pending, entry)
            except StoreUnavailableError as exc:
                errors.append(f"pending: {exc}")
    return {"worker": worker, "errors": errors, "writes": writes, "locks_won": locks_won}


def overlapping_writes(results: list[dict[str, Any]]) -> int:
    """How many write calls ran while a write call of another worker was running.

    SQLite lets one connection write at a time, so each such pair had one worker waiting for
    the other's lock (or retrying): this is the contention the test is about.
    """
    calls = sorted(
        (start, end, result["worker"]) for result in results for start, end in result["writes"]
    )
    latest_end: dict[int, float] = {}  # per worker, the latest end among calls started so far
    overlapping = 0
    for start, end, worker in calls:
        if any(w != worker and other_end > start for w, other_end in latest_end.items()):
            overlapping += 1
        latest_end[worker] = max(end, latest_end.get(worker, end))
    return overlapping


def run(kind: str, path: str, *, logs: Any, workers: int = 4, cycles: int = 60) -> list[Any]:
    """Start ``workers`` hammer processes on one file together; their result lines, parsed.

    Every process is stopped in a ``finally`` (:class:`tests.stores.workers.Workers`).
    """
    from tests.stores.workers import Workers

    argv = [sys.executable, "-m", "tests.stores.hammer"]
    config = {"store": kind, "path": path, "cycles": cycles}
    argvs = [[*argv, json.dumps({**config, "worker": n})] for n in range(workers)]
    with Workers(argvs, logs=logs, deadline=300) as group:
        group.wait_ready()
        group.go()
        return [json.loads(line) for line in group.results()]


def main(raw: str) -> None:
    config = json.loads(raw)
    store = _open(config)
    if store is None:  # migrate only
        return
    retries = 0

    def count_retry(details: stamina.instrumentation.RetryDetails) -> None:
        nonlocal retries
        retries += 1

    # Replaces stamina's logging hook: every retry the store makes is counted, none logged.
    stamina.instrumentation.set_on_retry_hooks([count_retry])
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return  # the test gave up before the start: nothing to do
    result = hammer(store, int(config["worker"]), int(config["cycles"]))
    store.close()
    print(json.dumps({**result, "retries": retries}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
