"""The Django ORM token store, the default store of the Django adapter (``STORE: "django"``).

Tokens, issue locks and pending revocations live in the app's own database through the
models in :mod:`chatauth.integrations.django.models`, so every worker process and machine that
shares the database shares the tokens; no extra service is needed.

Every query goes to ``router.db_for_write(model)``, reads included: a token read from a
lagging replica inside the issue lock would issue a second token. A database router can send
chatauth's tables to a database of their own (see Django's "Multiple databases").

The cross-process issue lock is one :class:`~chatauth.integrations.django.models.IssueLock`
row per key with an expiry. Where the backend has ``SELECT ... FOR UPDATE`` (PostgreSQL,
MySQL, Oracle) the row is locked inside ``transaction.atomic`` while it is checked and taken.
SQLite has no row locks but runs one writer at a time, so there the lock is taken with single
compare-and-set statements (an ``INSERT`` that fails on the primary key, an ``UPDATE`` whose
``WHERE`` requires the lock to be expired): each is atomic on its own, and no read-then-write
transaction is needed that SQLite could abort with "database is locked". The lock is held only
around the provider call for one key, never for the whole table.

Waiting for a locked SQLite database: SQLite waits for another connection's write lock (the
connection's busy timeout: Django's ``OPTIONS["timeout"]``, 5 seconds by default) only in a
transaction that has not read yet; a transaction that reads and then writes (what
``update_or_create`` does) gets "database is locked" at once when another process writes
meanwhile. So every write here is a single statement: a token is stored with one upsert
(``INSERT ... ON CONFLICT DO UPDATE`` through ``bulk_create(update_conflicts=True)``).
(Django 4.2+ on SQLite and PostgreSQL; backends without it keep ``update_or_create``, which
reads with ``SELECT ... FOR UPDATE`` there.) Should SQLite still answer "database is locked"
(a write lock held for longer than the busy timeout, or a case where SQLite does not wait at
all), the statement is retried with jittered exponential backoff by :mod:`stamina` for up to
the store's ``timeout`` (default 10 seconds); the attempt running at that moment may still
wait out its busy timeout, and one backoff pause is at most 0.5 s. So with the defaults the
store raises :class:`~chatauth.errors.StoreUnavailableError` after at most about 15.5
seconds (10 + 5 + 0.5). Inside the app's own transaction (``atomic``, ``ATOMIC_REQUESTS``)
nothing is retried: a statement cannot be retried alone within a transaction SQLite refused.
Other databases wait for locks themselves and are not retried.

Expiry times (issue locks, :meth:`DjangoStore.pop_stale`) are read from the store's
:class:`~chatauth.clock.Clock`; ``updated_at`` and ``created_at`` are Django's ``auto_now``
fields.

The async twins are BaseStore's; they leave the event loop through ``asgiref``'s
``sync_to_async`` (Django's own way to reach the ORM from async code), by overriding the one
method every twin calls: the event loop never waits for the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar

import stamina
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.db.models import Q

from chatauth.clock import Clock
from chatauth.errors import StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.stores.sqlite import database_is_locked
from chatauth.tokens import ChatToken, SessionKey

from .models import ChatToken as TokenRow
from .models import IssueLock
from .models import PendingRevocation as PendingRow

__all__ = ["DjangoStore"]

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

#: Seconds of retries for a statement SQLite answered "database is locked" (see the module
#: docstring for the whole bound).
DEFAULT_TIMEOUT = 10.0

# Backoff between those retries, seconds (stamina's meaning); the jitter keeps several
# waiting processes from retrying in step.
_RETRY_WAIT_INITIAL = 0.01
_RETRY_WAIT_MAX = 0.5
_RETRY_WAIT_JITTER = 0.02

# The token row's columns an upsert overwrites (all but the primary key).
_TOKEN_FIELDS = [
    "user_key",
    "provider",
    "uid",
    "fingerprint",
    "payload",
    "issued_at",
    "expires_at",
    "usable_until",
    "served_at",
    "updated_at",
]


def _locked(exc: Exception) -> bool:
    # Django wraps the driver's error; the sqlite3 one is its __cause__.
    return isinstance(exc, OperationalError) and database_is_locked(exc.__cause__ or exc)


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(timezone.utc) if moment is not None else None


# The cached request path reads one row by its primary key. The ORM builds and compiles that
# query anew on every call, about ten times the cost of the statement itself, so this one
# read is a SELECT written once per database alias (names quoted by the backend, the
# parameter bound by the driver); every other statement goes through the ORM.
_SELECT_SQL: dict[tuple[str, str], str] = {}


def _column(name: str) -> str:
    column = getattr(TokenRow._meta.get_field(name), "column", None)
    assert isinstance(column, str), name
    return column


def _select_token(alias: str, digest: str) -> tuple[Any, ...] | None:
    connection = connections[alias]
    sql = _SELECT_SQL.get((alias, connection.vendor))
    if sql is None:
        quote = connection.ops.quote_name
        # Two columns: the payload, and when it was last served (rows stored before the
        # served_at column count as served when last written).
        served = f"COALESCE({quote(_column('served_at'))}, {quote(_column('updated_at'))})"
        # Only the model's own names, quoted by the backend; the value is a bound parameter.
        sql = _SELECT_SQL[alias, connection.vendor] = (
            f"SELECT {quote(_column('payload'))}, {served}"  # noqa: S608
            f" FROM {quote(TokenRow._meta.db_table)} WHERE {quote(_column('key'))} = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [digest])
        row: tuple[Any, ...] | None = cursor.fetchone()
    return row


def _from_db(value: datetime | str | None) -> datetime | None:
    """A datetime column as the driver returns it, as an aware UTC datetime: aware already
    (PostgreSQL), naive (SQLite, MySQL: UTC with ``USE_TZ``, local time without, as Django
    wrote it), or text from a driver that does not convert."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None and settings.USE_TZ:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class DjangoStore(BaseStore):
    """Chat tokens in the Django database (see the module docstring).

    Args:
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` (``STORE_ENCRYPTION_KEY``)
            to encrypt payloads at rest; without it the JSON payload relies on the database's
            access control, like Django's own session table.
        using: a database alias that overrides the router (for scripts and tests).
        timeout: on SQLite, seconds to keep retrying a statement refused with "database is
            locked" (default 10; see the module docstring for the whole bound).
        clock: the :class:`~chatauth.clock.Clock` for lock expiry and ``pop_stale``; default
            the system clock.

    Database errors surface as :class:`~chatauth.errors.StoreUnavailableError` (503 with
    ``Retry-After`` at the token endpoint).
    """

    name = "django"

    def __init__(
        self,
        *,
        cipher: TokenCipher | None = None,
        using: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(cipher=cipher, clock=clock)
        self.using = using
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<DjangoStore using={self.using or 'router'}>"

    def _db(self, model: type[Any]) -> str:
        alias: str = self.using or router.db_for_write(model)
        return alias

    def _unavailable(self, exc: DatabaseError) -> StoreUnavailableError:
        return StoreUnavailableError(
            f"The Django database token store failed ({type(exc).__name__}).",
            provider=self.name,
            retry_after=1,
        )

    def _call(self, alias: str, statement: Callable[[], T]) -> T:
        """``statement()``, retried while SQLite answers "database is locked" (within
        ``self.timeout`` seconds of retries); run once on other databases and inside a
        transaction of the caller's.

        Raises:
            StoreUnavailableError: any :class:`~django.db.DatabaseError` left after that.
        """
        connection = connections[alias]
        try:
            if connection.vendor != "sqlite" or connection.in_atomic_block or self.timeout <= 0:
                return statement()
            # The common case, an unlocked database, costs the statement alone: only a
            # refusal opens the retry loop (stamina's context costs more than a cached read).
            started = time.monotonic()
            try:
                return statement()
            except DatabaseError as exc:
                if not _locked(exc):
                    raise
            for attempt in stamina.retry_context(
                on=_locked,
                attempts=None,
                timeout=max(self.timeout - (time.monotonic() - started), 0.001),
                wait_initial=_RETRY_WAIT_INITIAL,
                wait_max=_RETRY_WAIT_MAX,
                wait_jitter=_RETRY_WAIT_JITTER,
            ):
                with attempt:
                    return statement()
        except DatabaseError as exc:
            raise self._unavailable(exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _text(self, token: ChatToken) -> str:
        # dump() gives JSON or Fernet output; both are ASCII/UTF-8 text.
        return self.dump(token).decode()

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        alias = self._db(TokenRow)
        row = self._call(alias, lambda: _select_token(alias, key.digest))
        if row is None:
            return None
        payload, served_at = row
        return self.load(payload, served_at=_from_db(served_at))

    def set(self, key: SessionKey, token: ChatToken) -> None:
        alias = self._db(TokenRow)
        row = TokenRow(
            key=key.digest,
            user_key=key.user_digest,
            provider=key.provider,
            uid=key.uid,
            fingerprint=token.fingerprint,
            payload=self._text(token),
            issued_at=_utc(token.issued_at),
            expires_at=_utc(token.expires_at),
            usable_until=_utc(token.usable_until()),
            served_at=self.clock.now(),
        )
        tokens = TokenRow._default_manager.using(alias)
        if not connections[alias].features.supports_update_conflicts_with_target:
            # MySQL, Oracle: update_or_create reads the row with SELECT ... FOR UPDATE, so
            # its read-then-write waits for the row lock like any other statement.
            defaults = {name: getattr(row, name) for name in _TOKEN_FIELDS[:-1]}
            self._call(alias, lambda: tokens.update_or_create(key=key.digest, defaults=defaults))
            return
        # One statement (INSERT ... ON CONFLICT (key) DO UPDATE): it takes SQLite's write
        # lock before reading anything, so it waits for another process's write instead of
        # failing as update_or_create's SELECT-then-write transaction does.
        self._call(
            alias,
            lambda: tokens.bulk_create(
                [row], update_conflicts=True, unique_fields=["key"], update_fields=_TOKEN_FIELDS
            ),
        )

    def _pop_rows(self, *conditions: Q, limit: int | None = None, **lookup: Any) -> list[ChatToken]:
        alias = self._db(TokenRow)
        tokens = TokenRow._default_manager.using(alias)
        popped: list[ChatToken] = []
        found = self._call(
            alias,
            lambda: list(
                tokens.filter(*conditions, **lookup).values_list("key", "payload")[:limit]
            ),
        )
        for key, payload in found:
            # Delete only the row we read (same payload): of two processes popping one key,
            # exactly one gets the token, so it is revoked once. One statement per row, each
            # retried on its own: a token already deleted is already in ``popped``.
            deleted, _ = self._call(alias, tokens.filter(key=key, payload=payload).delete)
            if deleted:
                popped.append(self.load(payload))
        return popped

    def pop(self, key: SessionKey) -> ChatToken | None:
        popped = self._pop_rows(key=key.digest)
        return popped[0] if popped else None

    def pop_user(self, provider: str, uid: str) -> list[ChatToken]:
        return self._pop_rows(user_key=SessionKey(provider, uid).user_digest)

    def pop_keys(self, digests: list[str]) -> list[ChatToken]:
        """Remove and return the tokens stored under these key digests (admin action)."""
        return self._pop_rows(key__in=list(digests))

    def pop_stale(self, now: datetime | None = None) -> list[ChatToken]:
        """Remove and return tokens chatauth no longer serves (``usable_until`` has passed).

        Such a token belongs to an app session that ended without a logout (expired, flushed,
        cookie lost): nobody will fetch it again, so it should be revoked rather than left
        valid at the provider. A key that was re-issued meanwhile is not touched: its
        ``usable_until`` is in the future.

        Args:
            now: the cut-off, an aware datetime; default the store clock's ``now()``.
        """
        return self._pop_rows(usable_until__lt=now or self.clock.now())

    def touch(self, key: SessionKey, served_at: datetime) -> None:
        alias = self._db(TokenRow)
        rows = TokenRow._default_manager.using(alias).filter(key=key.digest)
        self._call(alias, lambda: rows.update(served_at=_utc(served_at)))

    def sweep(
        self, provider: str, *, now: datetime, idle_before: datetime, limit: int = 1000
    ) -> list[ChatToken]:
        """See :meth:`BaseStore.sweep`; each row is deleted only if it still holds the payload
        that was read (a re-issued key is left alone)."""
        return self._pop_rows(
            Q(usable_until__lte=now)
            | Q(served_at__lt=idle_before)
            | Q(served_at__isnull=True, updated_at__lt=idle_before),
            limit=limit,
            provider=provider,
        )

    def session_keys(self, provider: str) -> list[SessionKey]:
        alias = self._db(TokenRow)
        rows = TokenRow._default_manager.using(alias).filter(provider=provider)
        pairs = self._call(alias, lambda: list(rows.values_list("key", "uid")))
        return [SessionKey.from_digest(provider, uid, digest) for digest, uid in pairs]

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        alias = self._db(TokenRow)
        rows = TokenRow._default_manager.using(alias).order_by("updated_at")
        if provider is not None:
            rows = rows.filter(provider=provider)
        if uid is not None:
            rows = rows.filter(uid=uid)
        payloads = self._call(alias, lambda: list(rows.values_list("payload", flat=True)))
        return [self.load(payload) for payload in payloads]

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        alias = self._db(IssueLock)
        locks = IssueLock._default_manager.using(alias)
        if connections[alias].features.has_select_for_update:
            return self._call(alias, lambda: self._lock_row(alias, key, owner, ttl))
        # SQLite: take over an expired lock in one conditional UPDATE, else insert. Each
        # statement reads the clock when it runs, not before a wait for the database.
        if self._call(
            alias,
            lambda: locks.filter(key=key.digest, expires_at__lte=self.clock.time()).update(
                owner=owner, expires_at=self.clock.time() + ttl
            ),
        ):
            return True
        return self._call(
            alias, lambda: self._insert_lock(alias, key, owner, self.clock.time() + ttl)
        )

    def _lock_row(self, alias: str, key: SessionKey, owner: str, ttl: float) -> bool:
        locks = IssueLock._default_manager.using(alias)
        with transaction.atomic(using=alias):
            row = locks.select_for_update().filter(key=key.digest).first()
            now = self.clock.time()
            if row is not None:
                if row.expires_at > now:
                    return False
                row.owner, row.expires_at = owner, now + ttl
                row.save(using=alias, update_fields=["owner", "expires_at"])
                return True
            return self._insert_lock(alias, key, owner, now + ttl)

    @staticmethod
    def _insert_lock(alias: str, key: SessionKey, owner: str, expires_at: float) -> bool:
        try:
            # A savepoint, so a lost race does not abort an enclosing transaction.
            with transaction.atomic(using=alias):
                IssueLock._default_manager.using(alias).create(
                    key=key.digest, owner=owner, expires_at=expires_at
                )
        except IntegrityError:
            return False  # another process inserted the row first: it holds the lock
        return True

    def _unlock(self, key: SessionKey, owner: str) -> None:
        alias = self._db(IssueLock)
        self._call(
            alias,
            lambda: (
                IssueLock._default_manager.using(alias).filter(key=key.digest, owner=owner).delete()
            ),
        )

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        alias = self._db(PendingRow)
        payload = self._text(token)
        self._call(
            alias,
            lambda: PendingRow._default_manager.using(alias).create(
                provider=token.provider,
                uid=token.uid,
                fingerprint=token.fingerprint,
                payload=payload,
                attempts=1,
                last_error=error_code[:100],
            ),
        )

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        alias = self._db(PendingRow)
        rows = self._call(
            alias, lambda: list(PendingRow._default_manager.using(alias).order_by("id")[:limit])
        )
        return [
            PendingRevocation(
                id=str(row.pk),
                token=self.load(row.payload),
                attempts=row.attempts,
                last_error=row.last_error,
                created_at=row.created_at,
            )
            for row in rows
        ]

    def remove_pending(self, entry: PendingRevocation) -> None:
        alias = self._db(PendingRow)
        self._call(
            alias,
            lambda: PendingRow._default_manager.using(alias).filter(pk=int(entry.id)).delete(),
        )

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        from django.db.models import F

        alias = self._db(PendingRow)
        self._call(
            alias,
            lambda: (
                PendingRow._default_manager.using(alias)
                .filter(pk=int(entry.id))
                .update(attempts=F("attempts") + 1, last_error=error_code[:100])
            ),
        )

    def count_pending(self) -> int:
        alias = self._db(PendingRow)
        count: int = self._call(alias, lambda: PendingRow._default_manager.using(alias).count())
        return count

    # -- async twins: BaseStore's, leaving the event loop the way Django wants -------------
    async def _in_thread(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """The ORM is reached through ``sync_to_async`` (thread-sensitive: Django's own rule
        for database connections from async code)."""
        return await sync_to_async(func)(*args, **kwargs)
