"""The embedded default store: one SQLite file, shared by the worker processes of one machine.

Uses only the standard library's :mod:`sqlite3`. The database runs in WAL mode so readers
never wait for a writer; every write is a short ``BEGIN IMMEDIATE`` transaction, and the
cross-process issue lock is a row in ``chatauth_locks`` with an expiry, so a worker that
crashes while issuing cannot block the key for longer than the lock's ttl. (Holding
``BEGIN IMMEDIATE`` across the provider's HTTP call would serialise every write of every user
behind one slow provider; a lock row serialises only the one key.)

Waiting for other processes: a write takes SQLite's write lock with its first statement
(``BEGIN IMMEDIATE``), never after a read in the same transaction. That matters because SQLite
waits (its busy timeout) only for a transaction that does not hold a read snapshot yet; a
transaction that read first and then wants to write while another connection writes gets
"database is locked" at once. Should SQLite still answer "database is locked" (a lock held
for longer than the wait, or one of the cases where SQLite does not wait, such as WAL
recovery), the operation is retried with jittered exponential backoff by :mod:`stamina`. Busy
waits and retries together stop after the store's ``timeout`` (default
:data:`DEFAULT_TIMEOUT`, 10 seconds, plus at most one backoff pause of 0.25 s): only then does
the operation raise :class:`~chatauth.errors.StoreUnavailableError` (a 503 with
``Retry-After``). Every operation is one transaction, so retrying it cannot apply it twice.

Times stored in the file (token update time, lock expiry, revocation queue time) are read
from the store's :class:`~chatauth.clock.Clock`; the waits above are real time.

Token payloads are JSON, encrypted when a cipher is given; the file is created with mode 0600.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import stamina

from chatauth.clock import Clock
from chatauth.errors import StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.tokens import ChatToken, SessionKey

__all__ = ["DEFAULT_TIMEOUT", "SQLiteStore", "database_is_locked"]

T = TypeVar("T")

#: Seconds an operation waits, in total, for a database another process has locked, before
#: it raises :class:`~chatauth.errors.StoreUnavailableError`.
DEFAULT_TIMEOUT = 10.0

# Backoff between retries of "database is locked", seconds (stamina's meaning). Writes hold
# the lock for about a millisecond, so the first retry comes soon; the jitter keeps several
# waiting processes from retrying in step.
_RETRY_WAIT_INITIAL = 0.005
_RETRY_WAIT_MAX = 0.25
_RETRY_WAIT_JITTER = 0.01

_SQLITE_BUSY = 5  # the primary result code behind "database is locked" (and its extended codes)


class _WouldWait(Exception):
    """A read on the event loop found the database locked: it goes to a thread instead."""


def database_is_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite's "database is locked" (``SQLITE_BUSY``): another connection
    holds the lock this one needs. Retrying later can succeed; no other error is retried."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return bool(code & 0xFF == _SQLITE_BUSY)
    return str(exc).startswith("database is locked")


SCHEMA = """
CREATE TABLE IF NOT EXISTS chatauth_tokens (
    key TEXT PRIMARY KEY,
    user_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    uid TEXT NOT NULL,
    payload BLOB NOT NULL,
    expires_at REAL,
    updated_at REAL NOT NULL,
    served_at REAL,
    usable_until REAL
);
CREATE INDEX IF NOT EXISTS chatauth_tokens_user ON chatauth_tokens (user_key);
CREATE TABLE IF NOT EXISTS chatauth_locks (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS chatauth_pending_revocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    provider TEXT NOT NULL,
    uid TEXT NOT NULL,
    payload BLOB NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""

#: Columns added after the first release, for files created before them (unix seconds):
#: when the token was last served, and when chatauth stops serving it (the sweep's keys).
_ADDED_COLUMNS = {"served_at": "REAL", "usable_until": "REAL"}
_SWEEP_INDEXES = """
CREATE INDEX IF NOT EXISTS chatauth_tokens_served ON chatauth_tokens (provider, served_at);
CREATE INDEX IF NOT EXISTS chatauth_tokens_usable ON chatauth_tokens (provider, usable_until);
"""


def _migrate(db: sqlite3.Connection) -> None:
    """Add the columns a file from an older chatauth lacks (in the caller's transaction)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(chatauth_tokens)")}
    for column, kind in _ADDED_COLUMNS.items():
        if column not in have:
            db.execute(f"ALTER TABLE chatauth_tokens ADD COLUMN {column} {kind}")
    for statement in filter(None, (s.strip() for s in _SWEEP_INDEXES.split(";"))):
        db.execute(statement)


class SQLiteStore(BaseStore):
    """Tokens, issue locks and pending revocations in one SQLite file.

    Args:
        path: the database file (created with its tables if missing, mode 0600).
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` for payloads at rest.
        timeout: seconds an operation waits in total for another process's lock on the
            database (SQLite's busy timeout plus retries, see the module docstring) before it
            raises :class:`~chatauth.errors.StoreUnavailableError`; default 10.
        clock: the :class:`~chatauth.clock.Clock` for the times kept in the file (lock
            expiry, update and queue times); default the system clock.

    Raises:
        StoreUnavailableError: the file cannot be opened or written (disk full, read-only),
            or another process kept the database locked for longer than ``timeout``.
    """

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cipher: TokenCipher | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(cipher=cipher, clock=clock)
        self.path = Path(path)
        self.timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_guard = threading.Lock()
        try:
            if not self.path.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
                # Tokens are bearer secrets: only the app's user may read the file.
                os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        except OSError as exc:
            raise StoreUnavailableError(
                f"Cannot create the SQLite token store file ({type(exc).__name__}).",
                provider=self.name,
                retry_after=1,
            ) from None
        # CREATE ... IF NOT EXISTS is idempotent, so workers starting together on a new file
        # may all run it (the retries cover the one that finds another creating the tables).
        self._run(lambda db: db.executescript(SCHEMA))
        # Check-then-ALTER inside one write transaction: workers starting together on an
        # old file add each column once.
        self._write(_migrate)

    def __repr__(self) -> str:
        return f"<SQLiteStore {str(self.path)!r}>"

    # sqlite3 connections must not be shared between threads: one per thread.
    def _db(self, busy_ms: int) -> sqlite3.Connection:
        """This thread's connection, its busy timeout set to ``busy_ms`` (set only when it
        changes: a statement per operation otherwise)."""
        local = self._local
        db: sqlite3.Connection | None = getattr(local, "db", None)
        if db is None:
            # Errors go to the caller, _run(), which retries "database is locked" (switching a
            # new file to WAL needs a moment of exclusive access) and reports the others.
            db = sqlite3.connect(
                self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                db.close()
                raise
            local.db, local.busy_ms = db, busy_ms
            with self._connections_guard:
                self._connections.append(db)
        elif local.busy_ms != busy_ms:
            db.execute(f"PRAGMA busy_timeout = {busy_ms}")
            local.busy_ms = busy_ms
        return db

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"The SQLite token store failed ({type(exc).__name__}: {exc}).",
            provider=self.name,
            retry_after=1,
        )

    def _run(self, work: Callable[[sqlite3.Connection], T], *, write: bool = False) -> T:
        """``work(connection)``, in a ``BEGIN IMMEDIATE`` transaction when ``write``; retried
        while the database is locked, within ``self.timeout`` seconds in total.

        The first attempt runs as is, with the whole timeout as SQLite's busy wait: the
        common case, an unlocked database, costs the statement and nothing more. Only
        "database is locked" after it goes to the retry loop, with what is left of the
        timeout. Inside :meth:`aget`'s read on the event loop there is one attempt with no
        busy wait, and a locked database raises :class:`_WouldWait` instead.

        Raises:
            StoreUnavailableError: any :class:`sqlite3.Error`, once the retries are over.
        """
        local = self._local
        if getattr(local, "inline", False):
            try:
                return self._attempt(work, write, 0)
            except sqlite3.Error as exc:
                if database_is_locked(exc):
                    raise _WouldWait from None
                raise self._unavailable(exc) from None
        started = time.monotonic()  # real time: this bounds a real wait, whatever the clock
        try:
            try:
                return self._attempt(work, write, max(0, int(self.timeout * 1000)))
            except sqlite3.Error as exc:
                if not database_is_locked(exc) or self.timeout <= 0:
                    raise
            for attempt in stamina.retry_context(
                on=database_is_locked,
                attempts=None,
                # stamina wants a positive budget; once it is spent, the loop's own first
                # attempt (no busy wait left) is the last one.
                timeout=max(self.timeout - (time.monotonic() - started), 0.001),
                wait_initial=_RETRY_WAIT_INITIAL,
                wait_max=_RETRY_WAIT_MAX,
                wait_jitter=_RETRY_WAIT_JITTER,
            ):
                with attempt:
                    # This attempt's busy timeout is what is left of the operation's, so
                    # that busy waits and retries together stay within self.timeout.
                    left = self.timeout - (time.monotonic() - started)
                    return self._attempt(work, write, max(0, int(left * 1000)))
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, work: Callable[[sqlite3.Connection], T], write: bool, busy_ms: int) -> T:
        db = self._db(busy_ms)
        return self._transaction(db, work) if write else work(db)

    @staticmethod
    def _transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        # BEGIN IMMEDIATE takes the write lock before anything is read, so SQLite waits for
        # it (busy timeout) instead of failing at once when the transaction upgrades.
        db.execute("BEGIN IMMEDIATE")
        try:
            result = work(db)
            db.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT ("database is locked" in rollback-journal mode): the
            # transaction must end here, or the retry would run inside it.
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return result

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._run(work, write=True)

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = self._run(lambda db: db.execute(sql, params).fetchall())
        return rows

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        rows = self._read(
            "SELECT payload, COALESCE(served_at, updated_at) FROM chatauth_tokens WHERE key = ?",
            (key.digest,),
        )
        if not rows:
            return None
        return self.load(rows[0][0], served_at=datetime.fromtimestamp(rows[0][1], timezone.utc))

    async def aget(self, key: SessionKey) -> ChatToken | None:
        """:meth:`get` run on the event loop, not in a worker thread: a read of a WAL database
        never waits for a writer, and costs a few microseconds, less than the hop to a thread
        and back. It runs with no busy wait, so the loop is never blocked waiting for a lock:
        should the database be locked all the same (WAL recovery, a checkpoint), the read
        goes to a worker thread, with the usual waits and retries."""
        local = self._local
        local.inline = True
        try:
            return self.get(key)
        except _WouldWait:
            pass
        finally:
            local.inline = False
        return await super().aget(key)

    def set(self, key: SessionKey, token: ChatToken) -> None:
        expires = token.expires_at.timestamp() if token.expires_at else None
        until = token.usable_until()
        payload = self.dump(token)
        now = self.clock.time()
        self._write(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO chatauth_tokens (key, user_key, provider, uid, payload,"
                " expires_at, updated_at, served_at, usable_until)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.digest,
                    key.user_digest,
                    key.provider,
                    key.uid,
                    payload,
                    expires,
                    now,
                    now,
                    until.timestamp() if until else None,
                ),
            )
        )

    def touch(self, key: SessionKey, served_at: datetime) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE chatauth_tokens SET served_at = ? WHERE key = ?",
                (served_at.timestamp(), key.digest),
            )
        )

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        # One statement: the condition is checked and the rows deleted under SQLite's write
        # lock, so a key re-issued meanwhile (new usable_until, new served_at) is not taken.
        # Rows from before the served_at column count as served when last written.
        rows = self._write(
            lambda db: db.execute(
                "DELETE FROM chatauth_tokens WHERE key IN (SELECT key FROM chatauth_tokens"
                " WHERE provider = ? AND (usable_until <= ?"
                " OR COALESCE(served_at, updated_at) < ?) LIMIT ?) RETURNING payload",
                (provider, now.timestamp(), idle_before.timestamp(), limit),
            ).fetchall()
        )
        return [self.load(row[0]) for row in rows]

    def pop(self, key: SessionKey) -> ChatToken | None:
        row = self._write(
            lambda db: db.execute(
                "DELETE FROM chatauth_tokens WHERE key = ? RETURNING payload", (key.digest,)
            ).fetchone()
        )
        return self.load(row[0]) if row else None

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        user_key = SessionKey(provider, uid).user_digest
        rows = self._write(
            lambda db: db.execute(
                "DELETE FROM chatauth_tokens WHERE user_key = ? RETURNING payload", (user_key,)
            ).fetchall()
        )
        return [self.load(row[0]) for row in rows]

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        sql, params = "SELECT payload FROM chatauth_tokens WHERE 1=1", list[str]()
        if provider is not None:
            sql, params = sql + " AND provider = ?", [*params, provider]
        if uid is not None:
            sql, params = sql + " AND uid = ?", [*params, uid]
        return [
            self.load(row[0]) for row in self._read(sql + " ORDER BY updated_at", tuple(params))
        ]

    def session_keys(self, provider: str) -> list[SessionKey]:
        rows = self._read("SELECT key, uid FROM chatauth_tokens WHERE provider = ?", (provider,))
        return [SessionKey.from_digest(provider, row[1], row[0]) for row in rows]

    def prune_expired(self) -> int:
        """Delete tokens past their ``expires_at`` (by the store's clock); returns how many."""
        return self._write(
            lambda db: (
                db.execute(
                    "DELETE FROM chatauth_tokens WHERE expires_at IS NOT NULL AND expires_at < ?",
                    (self.clock.time(),),
                ).rowcount
            )
        )

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        def take(db: sqlite3.Connection) -> bool:
            # Inside BEGIN IMMEDIATE no other process can write between the check and the
            # set. The time is read here, not before a wait for the database.
            now = self.clock.time()
            row = db.execute(
                "SELECT expires_at FROM chatauth_locks WHERE key = ?", (key.digest,)
            ).fetchone()
            if row is not None and row[0] > now:
                return False
            db.execute(
                "INSERT OR REPLACE INTO chatauth_locks (key, owner, expires_at) VALUES (?, ?, ?)",
                (key.digest, owner, now + ttl),
            )
            return True

        return self._write(take)

    def _unlock(self, key: SessionKey, owner: str) -> None:
        self._write(
            lambda db: db.execute(
                "DELETE FROM chatauth_locks WHERE key = ? AND owner = ?", (key.digest, owner)
            )
        )

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        payload = self.dump(token)
        self._write(
            lambda db: db.execute(
                "INSERT INTO chatauth_pending_revocations"
                " (provider, uid, payload, attempts, last_error, created_at)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                (token.provider, token.uid, payload, error_code, self.clock.time()),
            )
        )

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        rows = self._read(
            "SELECT id, payload, attempts, last_error, created_at"
            " FROM chatauth_pending_revocations ORDER BY id LIMIT ?",
            (limit,),
        )
        return [
            PendingRevocation(
                id=str(row[0]),
                token=self.load(row[1]),
                attempts=row[2],
                last_error=row[3],
                created_at=datetime.fromtimestamp(row[4], timezone.utc),
            )
            for row in rows
        ]

    def remove_pending(self, entry: PendingRevocation) -> None:
        self._write(
            lambda db: db.execute(
                "DELETE FROM chatauth_pending_revocations WHERE id = ?", (int(entry.id),)
            )
        )

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE chatauth_pending_revocations SET attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error_code, int(entry.id)),
            )
        )

    def count_pending(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM chatauth_pending_revocations")[0][0])

    def close(self) -> None:
        with self._connections_guard:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
