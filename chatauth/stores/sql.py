"""A shared store in a SQL database, through SQLAlchemy 2 Core: PostgreSQL for apps that run
on several machines without Redis, and SQLite through the same code.

Built on a synchronous SQLAlchemy :class:`~sqlalchemy.engine.Engine`
(https://docs.sqlalchemy.org/en/20/core/); the async twins run the sync methods in a worker
thread (:class:`~chatauth.stores.base.BaseStore`), so an async app never blocks its event
loop. Three tables, created if missing (the same layout as the SQLite store's):
``chatauth_tokens``, ``chatauth_locks`` and ``chatauth_pending_revocations``. Rows hold
sha256 digests of the (provider, uid, app session) keys, never an app session id; token
payloads are JSON, Fernet-encrypted with a cipher.

The cross-process issue lock:

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock``) on a 64-bit number
  taken from the key's digest, held on one pooled connection until released
  (``pg_advisory_unlock``). A worker that dies releases it with its connection, at once;
  ``ttl`` is not needed. No table row is written for a lock.
- **Other databases** (SQLite): a row in ``chatauth_locks`` with an expiry by the store's
  clock, taken in a transaction (a crashed holder's lock expires after ``ttl``).

Every database error (refused connection, timeout, a database that is read-only) raises
:class:`~chatauth.errors.StoreUnavailableError` (a 503 with ``Retry-After``); its message names
the error's type, never the SQL or its parameters (which carry payloads).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from chatauth.clock import Clock
from chatauth.errors import ConfigurationError, StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.tokens import ChatToken, SessionKey

try:
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "SQLAlchemyStore needs SQLAlchemy: pip install 'chatauth-middleware[sql]'"
    ) from exc

__all__ = ["SQLAlchemyStore", "advisory_lock_id"]

metadata = sa.MetaData()
tokens = sa.Table(
    "chatauth_tokens",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("user_key", sa.String(64), nullable=False, index=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("uid", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("expires_at", sa.Float),  # Unix seconds, as every time below
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("served_at", sa.Float, nullable=False),
    sa.Column("usable_until", sa.Float),
    sa.Index("chatauth_tokens_served", "provider", "served_at"),
    sa.Index("chatauth_tokens_usable", "provider", "usable_until"),
)
locks = sa.Table(
    "chatauth_locks",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
pending_revocations = sa.Table(
    "chatauth_pending_revocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("provider", sa.Text, nullable=False),
    sa.Column("uid", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)


def advisory_lock_id(key: SessionKey) -> int:
    """The signed 64-bit PostgreSQL advisory-lock number of one key (first 8 bytes of its
    sha256 digest)."""
    return int.from_bytes(bytes.fromhex(key.digest)[:8], "big", signed=True)


def _sqlite_immediate(engine: sa.Engine) -> None:
    # pysqlite begins transactions lazily, so a read-then-write transaction could fail at
    # once with "database is locked" instead of waiting: take the write lock with BEGIN
    # IMMEDIATE (SQLAlchemy's documented pysqlite recipe), and use WAL.
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class SQLAlchemyStore(BaseStore):
    """Tokens, issue locks and pending revocations in a SQL database (SQLAlchemy Core).

    Args:
        engine: a sync SQLAlchemy ``Engine`` (PostgreSQL or SQLite; see :meth:`from_url`).
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` for payloads at rest.
        clock: the :class:`~chatauth.clock.Clock` for the times kept in the tables (token
            update time, a lock row's expiry, queue times); default the system clock.
        create_tables: create the three tables if missing (default ``True``).

    Raises:
        StoreUnavailableError: the database cannot be reached to create the tables.
    """

    name = "sql"

    def __init__(
        self,
        engine: sa.Engine,
        *,
        cipher: TokenCipher | None = None,
        clock: Clock | None = None,
        create_tables: bool = True,
    ) -> None:
        super().__init__(cipher=cipher, clock=clock)
        self.engine = engine
        self.advisory = engine.dialect.name == "postgresql"
        self._held: dict[tuple[str, str], sa.Connection] = {}
        self._held_guard = threading.Lock()
        if create_tables:
            try:
                with self._guard():
                    metadata.create_all(engine)
            except UnicodeError:
                # The resolver's idna codec refuses a host or port no DNS name can have (a
                # 1,000-digit port): the URL is wrong, not the database down.
                raise ConfigurationError(
                    "The SQL STORE URL names a host or port that cannot be resolved.",
                    setting="STORE",
                ) from None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cipher: TokenCipher | None = None,
        clock: Clock | None = None,
        **engine_options: Any,
    ) -> SQLAlchemyStore:
        """A store for a SQLAlchemy database URL.

        ``postgresql://user:password@host:5432/db`` uses psycopg 3 (the ``postgres`` extra);
        ``postgresql+psycopg://`` says so explicitly, other drivers work if installed.
        ``sqlite+pysqlite:///path.db`` is SQLite through this store (plain ``sqlite:///`` is
        the standard-library :class:`~chatauth.stores.sqlite.SQLiteStore`).

        Args:
            url: the database URL; its password never appears in errors or ``repr``.
            cipher: optional payload cipher (``STORE_ENCRYPTION_KEY``).
            clock: the store's clock (default the system clock).
            engine_options: keyword arguments for :func:`sqlalchemy.create_engine`
                (default ``pool_pre_ping=True``).

        Raises:
            ConfigurationError: the URL is malformed or its driver is not installed.
            StoreUnavailableError: the database cannot be reached to create the tables.
        """
        if url.lower().startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        try:
            engine = sa.create_engine(url, **{"pool_pre_ping": True, **engine_options})
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigurationError(
                f"Invalid SQL STORE URL ({type(exc).__name__}); expected e.g. "
                "postgresql+psycopg://user:password@host:5432/db or sqlite+pysqlite:///path.db",
                setting="STORE",
            ) from None
        except ImportError as exc:
            raise ConfigurationError(
                f"The STORE URL's database driver is not installed ({exc.name}): "
                "pip install 'chatauth-middleware[sql,postgres]'",
                setting="STORE",
            ) from None
        if engine.dialect.name == "sqlite":
            _sqlite_immediate(engine)
        return cls(engine, cipher=cipher, clock=clock)

    def __repr__(self) -> str:
        return f"<SQLAlchemyStore {self.engine.url.render_as_string(hide_password=True)!r}>"

    # -- errors ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            cause = getattr(exc, "orig", None) or exc
            raise StoreUnavailableError(
                f"The SQL token store ({self.engine.dialect.name}) failed "
                f"({type(cause).__name__}).",
                provider=self.name,
                retry_after=1,
            ) from None

    @contextlib.contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        with self._guard(), self.engine.begin() as conn:
            yield conn

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        query = sa.select(tokens.c.payload, tokens.c.served_at).where(tokens.c.key == key.digest)
        with self._begin() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        served = datetime.fromtimestamp(row.served_at, timezone.utc)
        return self.load(row.payload, served_at=served)

    def set(self, key: SessionKey, token: ChatToken) -> None:
        now = self.clock.time()
        until = token.usable_until()
        row = {
            "key": key.digest,
            "user_key": key.user_digest,
            "provider": key.provider,
            "uid": key.uid,
            "payload": self.dump(token),
            "expires_at": token.expires_at.timestamp() if token.expires_at else None,
            "updated_at": now,
            "served_at": now,
            "usable_until": until.timestamp() if until else None,
        }
        with self._begin() as conn:
            # Replace: delete and insert in one transaction (portable; on PostgreSQL the
            # delete's row lock orders two writers of one key).
            conn.execute(sa.delete(tokens).where(tokens.c.key == key.digest))
            conn.execute(sa.insert(tokens).values(**row))

    def touch(self, key: SessionKey, served_at: datetime) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.update(tokens)
                .where(tokens.c.key == key.digest)
                .values(served_at=served_at.timestamp())
            )

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        # One DELETE ... RETURNING: concurrent sweepers each get a row at most once (the
        # second finds it deleted). The condition is repeated outside the sub-select so that
        # PostgreSQL re-checks it on a row touched meanwhile; a key re-issued meanwhile is a
        # new row, invisible to this statement.
        done = sa.or_(
            tokens.c.usable_until <= now.timestamp(),
            tokens.c.served_at < idle_before.timestamp(),
        )
        due = sa.select(tokens.c.key).where(tokens.c.provider == provider, done).limit(limit)
        with self._begin() as conn:
            payloads = conn.scalars(
                sa.delete(tokens)
                .where(tokens.c.key.in_(due.scalar_subquery()), done)
                .returning(tokens.c.payload)
            ).all()
        return [self.load(p) for p in payloads]

    def pop(self, key: SessionKey) -> ChatToken | None:
        with self._begin() as conn:
            payload = conn.scalar(
                sa.delete(tokens).where(tokens.c.key == key.digest).returning(tokens.c.payload)
            )
        return self.load(payload) if payload is not None else None

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        user_key = SessionKey(provider, uid).user_digest
        with self._begin() as conn:
            payloads = conn.scalars(
                sa.delete(tokens).where(tokens.c.user_key == user_key).returning(tokens.c.payload)
            ).all()
        return [self.load(p) for p in payloads]

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        query = sa.select(tokens.c.payload).order_by(tokens.c.updated_at)
        if provider is not None:
            query = query.where(tokens.c.provider == provider)
        if uid is not None:
            query = query.where(tokens.c.uid == uid)
        with self._begin() as conn:
            payloads = conn.scalars(query).all()
        return [self.load(p) for p in payloads]

    def session_keys(self, provider: str) -> list[SessionKey]:
        query = sa.select(tokens.c.key, tokens.c.uid).where(tokens.c.provider == provider)
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [SessionKey.from_digest(provider, uid, digest) for digest, uid in rows]

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        if self.advisory:
            return self._try_advisory_lock(key, owner)
        with self._begin() as conn:
            now = self.clock.time()
            expires = conn.scalar(sa.select(locks.c.expires_at).where(locks.c.key == key.digest))
            if expires is not None and expires > now:
                return False
            conn.execute(sa.delete(locks).where(locks.c.key == key.digest))
            conn.execute(sa.insert(locks).values(key=key.digest, owner=owner, expires_at=now + ttl))
            return True

    def _try_advisory_lock(self, key: SessionKey, owner: str) -> bool:
        with self._guard():
            conn = self.engine.connect()
            try:
                taken = bool(
                    conn.scalar(sa.select(sa.func.pg_try_advisory_lock(advisory_lock_id(key))))
                )
                conn.commit()  # the session-level lock outlives the transaction
            except BaseException:
                conn.invalidate()  # never hand a connection in an unknown state back to the pool
                conn.close()
                raise
        if not taken:
            conn.close()
            return False
        with self._held_guard:
            self._held[(key.digest, owner)] = conn
        return True

    def _unlock(self, key: SessionKey, owner: str) -> None:
        if not self.advisory:
            with self._begin() as conn:
                conn.execute(
                    sa.delete(locks).where(locks.c.key == key.digest, locks.c.owner == owner)
                )
            return
        with self._held_guard:
            if (key.digest, owner) not in self._held:
                return
            conn = self._held.pop((key.digest, owner))
        try:
            with self._guard():
                conn.scalar(sa.select(sa.func.pg_advisory_unlock(advisory_lock_id(key))))
                conn.commit()
        except BaseException:
            # Closing the database connection is what releases the lock then.
            conn.invalidate()
            raise
        finally:
            conn.close()

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        payload = self.dump(token)
        with self._begin() as conn:
            conn.execute(
                sa.insert(pending_revocations).values(
                    provider=token.provider,
                    uid=token.uid,
                    payload=payload,
                    attempts=1,
                    last_error=error_code,
                    created_at=self.clock.time(),
                )
            )

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        t = pending_revocations
        query = (
            sa.select(t.c.id, t.c.payload, t.c.attempts, t.c.last_error, t.c.created_at)
            .order_by(t.c.id)
            .limit(limit)
        )
        with self._begin() as conn:
            rows = conn.execute(query).all()
        return [
            PendingRevocation(
                id=str(row.id),
                token=self.load(row.payload),
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=datetime.fromtimestamp(row.created_at, timezone.utc),
            )
            for row in rows
        ]

    def remove_pending(self, entry: PendingRevocation) -> None:
        with self._begin() as conn:
            conn.execute(
                sa.delete(pending_revocations).where(pending_revocations.c.id == int(entry.id))
            )

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        t = pending_revocations
        with self._begin() as conn:
            conn.execute(
                sa.update(t)
                .where(t.c.id == int(entry.id))
                .values(attempts=t.c.attempts + 1, last_error=error_code)
            )

    def count_pending(self) -> int:
        with self._begin() as conn:
            return int(
                conn.scalar(sa.select(sa.func.count()).select_from(pending_revocations)) or 0
            )

    def close(self) -> None:
        """Release held locks' connections and dispose of the engine's pool."""
        with self._held_guard:
            held, self._held = list(self._held.values()), {}
        for conn in held:
            conn.invalidate()
            conn.close()
        self.engine.dispose()
