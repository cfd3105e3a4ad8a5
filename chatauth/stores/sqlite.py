"""The embedded default store: one SQLite file, shared by the worker processes of one machine.

Uses only the standard library's :mod:`sqlite3`. The database runs in WAL mode so readers
never wait for a writer; every write is a short ``BEGIN IMMEDIATE`` transaction, and the
cross-process issue lock is a row in ``chatauth_locks`` with an expiry, so a worker that
crashes while issuing cannot block the key for longer than the lock's ttl. (Holding
``BEGIN IMMEDIATE`` across the provider's HTTP call would serialise every write of every user
behind one slow provider; a lock row serialises only the one key.)

Token payloads are JSON, encrypted when a cipher is given; the file is created with mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from chatauth.errors import StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.tokens import ChatToken, SessionKey

__all__ = ["SQLiteStore"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS chatauth_tokens (
    key TEXT PRIMARY KEY,
    user_key TEXT NOT NULL,
    provider TEXT NOT NULL,
    uid TEXT NOT NULL,
    payload BLOB NOT NULL,
    expires_at REAL,
    updated_at REAL NOT NULL
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


class SQLiteStore(BaseStore):
    """Tokens, issue locks and pending revocations in one SQLite file.

    Args:
        path: the database file (created with its tables if missing, mode 0600).
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` for payloads at rest.
        timeout: seconds a statement waits for another process's write lock (busy timeout).

    Raises:
        StoreUnavailableError: the file cannot be opened or written (disk full, read-only).
    """

    name = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        cipher: TokenCipher | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(cipher=cipher)
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
        try:
            # executescript manages its own transaction; CREATE ... IF NOT EXISTS is idempotent.
            self._db().executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def __repr__(self) -> str:
        return f"<SQLiteStore {str(self.path)!r}>"

    # sqlite3 connections must not be shared between threads: one per thread.
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(
                    self.path,
                    timeout=self.timeout,
                    isolation_level=None,
                    check_same_thread=False,
                )
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from None
            self._local.db = db
            with self._connections_guard:
                self._connections.append(db)
        return db

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"The SQLite token store failed ({type(exc).__name__}: {exc}).",
            provider=self.name,
            retry_after=1,
        )

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        db = self._db()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        try:
            rows: list[sqlite3.Row] = self._db().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from None
        return rows

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        rows = self._read("SELECT payload FROM chatauth_tokens WHERE key = ?", (key.digest,))
        return self.load(rows[0][0]) if rows else None

    def set(self, key: SessionKey, token: ChatToken) -> None:
        expires = token.expires_at.timestamp() if token.expires_at else None
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO chatauth_tokens"
                " (key, user_key, provider, uid, payload, expires_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key.digest,
                    key.user_digest,
                    key.provider,
                    key.uid,
                    self.dump(token),
                    expires,
                    time.time(),
                ),
            )

    def pop(self, key: SessionKey) -> ChatToken | None:
        with self._write() as db:
            row = db.execute(
                "DELETE FROM chatauth_tokens WHERE key = ? RETURNING payload", (key.digest,)
            ).fetchone()
        return self.load(row[0]) if row else None

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        user_key = SessionKey(provider, uid).user_digest
        with self._write() as db:
            rows = db.execute(
                "DELETE FROM chatauth_tokens WHERE user_key = ? RETURNING payload", (user_key,)
            ).fetchall()
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

    def prune_expired(self) -> int:
        """Delete tokens past their ``expires_at``; returns how many."""
        with self._write() as db:
            return db.execute(
                "DELETE FROM chatauth_tokens WHERE expires_at IS NOT NULL AND expires_at < ?",
                (time.time(),),
            ).rowcount

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._write() as db:
            # Inside BEGIN IMMEDIATE no other process can write between the check and the set.
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

    def _unlock(self, key: SessionKey, owner: str) -> None:
        with self._write() as db:
            db.execute(
                "DELETE FROM chatauth_locks WHERE key = ? AND owner = ?", (key.digest, owner)
            )

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO chatauth_pending_revocations"
                " (provider, uid, payload, attempts, last_error, created_at)"
                " VALUES (?, ?, ?, 1, ?, ?)",
                (token.provider, token.uid, self.dump(token), error_code, time.time()),
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
        with self._write() as db:
            db.execute("DELETE FROM chatauth_pending_revocations WHERE id = ?", (int(entry.id),))

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE chatauth_pending_revocations SET attempts = attempts + 1, last_error = ?"
                " WHERE id = ?",
                (error_code, int(entry.id)),
            )

    def count_pending(self) -> int:
        return int(self._read("SELECT COUNT(*) FROM chatauth_pending_revocations")[0][0])

    def close(self) -> None:
        with self._connections_guard:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()
