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

The async twins run the sync methods through ``asgiref``'s ``sync_to_async`` (Django's own way
to reach the ORM from async code): the event loop never waits for the database.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, IntegrityError, connections, router, transaction

from chatauth.errors import StoreUnavailableError
from chatauth.stores.base import BaseStore, PendingRevocation, TokenCipher
from chatauth.tokens import ChatToken, SessionKey

from .models import ChatToken as TokenRow
from .models import IssueLock
from .models import PendingRevocation as PendingRow

__all__ = ["DjangoStore"]

T = TypeVar("T")


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(timezone.utc) if moment is not None else None


class DjangoStore(BaseStore):
    """Chat tokens in the Django database (see the module docstring).

    Args:
        cipher: optional :class:`~chatauth.stores.base.TokenCipher` (``STORE_ENCRYPTION_KEY``)
            to encrypt payloads at rest; without it the JSON payload relies on the database's
            access control, like Django's own session table.
        using: a database alias that overrides the router (for scripts and tests).

    Database errors surface as :class:`~chatauth.errors.StoreUnavailableError` (503 with
    ``Retry-After`` at the token endpoint).
    """

    name = "django"

    def __init__(self, *, cipher: TokenCipher | None = None, using: str | None = None) -> None:
        super().__init__(cipher=cipher)
        self.using = using

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

    def _text(self, token: ChatToken) -> str:
        # dump() gives JSON or Fernet output; both are ASCII/UTF-8 text.
        return self.dump(token).decode()

    # -- tokens ----------------------------------------------------------------------------
    def get(self, key: SessionKey) -> ChatToken | None:
        try:
            payload = (
                TokenRow._default_manager.using(self._db(TokenRow))
                .filter(key=key.digest)
                .values_list("payload", flat=True)
                .first()
            )
        except DatabaseError as exc:
            raise self._unavailable(exc) from None
        return self.load(payload) if payload is not None else None

    def set(self, key: SessionKey, token: ChatToken) -> None:
        try:
            TokenRow._default_manager.using(self._db(TokenRow)).update_or_create(
                key=key.digest,
                defaults={
                    "user_key": key.user_digest,
                    "provider": key.provider,
                    "uid": key.uid,
                    "fingerprint": token.fingerprint,
                    "payload": self._text(token),
                    "issued_at": _utc(token.issued_at),
                    "expires_at": _utc(token.expires_at),
                    "usable_until": _utc(token.usable_until()),
                },
            )
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    def _pop_rows(self, **lookup: Any) -> list[ChatToken]:
        alias = self._db(TokenRow)
        tokens = TokenRow._default_manager.using(alias)
        popped: list[ChatToken] = []
        try:
            for key, payload in list(tokens.filter(**lookup).values_list("key", "payload")):
                # Delete only the row we read (same payload): of two processes popping one
                # key, exactly one gets the token, so it is revoked once. One statement per
                # row needs no read-then-write transaction, which SQLite could abort.
                deleted, _ = tokens.filter(key=key, payload=payload).delete()
                if deleted:
                    popped.append(self.load(payload))
        except DatabaseError as exc:
            raise self._unavailable(exc) from None
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
        """
        return self._pop_rows(usable_until__lt=now or datetime.now(timezone.utc))

    def sessions(self, provider: str | None = None, uid: str | None = None) -> list[ChatToken]:
        rows = TokenRow._default_manager.using(self._db(TokenRow)).order_by("updated_at")
        if provider is not None:
            rows = rows.filter(provider=provider)
        if uid is not None:
            rows = rows.filter(uid=uid)
        try:
            return [self.load(payload) for payload in rows.values_list("payload", flat=True)]
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    # -- the issue lock ----------------------------------------------------------------------
    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        alias = self._db(IssueLock)
        now = time.time()
        locks = IssueLock._default_manager.using(alias)
        try:
            if connections[alias].features.has_select_for_update:
                with transaction.atomic(using=alias):
                    row = locks.select_for_update().filter(key=key.digest).first()
                    if row is not None:
                        if row.expires_at > now:
                            return False
                        row.owner, row.expires_at = owner, now + ttl
                        row.save(using=alias, update_fields=["owner", "expires_at"])
                        return True
                    return self._insert_lock(alias, key, owner, now + ttl)
            # SQLite: take over an expired lock in one conditional UPDATE, else insert.
            if locks.filter(key=key.digest, expires_at__lte=now).update(
                owner=owner, expires_at=now + ttl
            ):
                return True
            return self._insert_lock(alias, key, owner, now + ttl)
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

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
        try:
            IssueLock._default_manager.using(self._db(IssueLock)).filter(
                key=key.digest, owner=owner
            ).delete()
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    # -- pending revocations -------------------------------------------------------------
    def add_pending(self, token: ChatToken, error_code: str) -> None:
        try:
            PendingRow._default_manager.using(self._db(PendingRow)).create(
                provider=token.provider,
                uid=token.uid,
                fingerprint=token.fingerprint,
                payload=self._text(token),
                attempts=1,
                last_error=error_code[:100],
            )
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    def pending(self, limit: int = 100) -> list[PendingRevocation]:
        try:
            rows = list(
                PendingRow._default_manager.using(self._db(PendingRow)).order_by("id")[:limit]
            )
        except DatabaseError as exc:
            raise self._unavailable(exc) from None
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
        try:
            PendingRow._default_manager.using(self._db(PendingRow)).filter(
                pk=int(entry.id)
            ).delete()
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    def retry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        from django.db.models import F

        try:
            PendingRow._default_manager.using(self._db(PendingRow)).filter(pk=int(entry.id)).update(
                attempts=F("attempts") + 1, last_error=error_code[:100]
            )
        except DatabaseError as exc:
            raise self._unavailable(exc) from None

    def count_pending(self) -> int:
        try:
            count: int = PendingRow._default_manager.using(self._db(PendingRow)).count()
        except DatabaseError as exc:
            raise self._unavailable(exc) from None
        return count

    # -- async twins: the ORM is reached through sync_to_async ---------------------------
    async def aget(self, key: SessionKey) -> ChatToken | None:
        return await sync_to_async(self.get)(key)

    async def aset(self, key: SessionKey, token: ChatToken) -> None:
        await sync_to_async(self.set)(key, token)

    async def apop(self, key: SessionKey) -> ChatToken | None:
        return await sync_to_async(self.pop)(key)

    async def apop_user(self, provider: str, uid: str) -> list[ChatToken]:
        return await sync_to_async(self.pop_user)(provider, uid)

    async def _atry_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        return await sync_to_async(self._try_lock)(key, owner, ttl)

    async def _aunlock(self, key: SessionKey, owner: str) -> None:
        await sync_to_async(self._unlock)(key, owner)

    async def aadd_pending(self, token: ChatToken, error_code: str) -> None:
        await sync_to_async(self.add_pending)(token, error_code)

    async def apending(self, limit: int = 100) -> list[PendingRevocation]:
        return await sync_to_async(self.pending)(limit)

    async def aremove_pending(self, entry: PendingRevocation) -> None:
        await sync_to_async(self.remove_pending)(entry)

    async def aretry_failed(self, entry: PendingRevocation, error_code: str) -> None:
        await sync_to_async(self.retry_failed)(entry, error_code)

    async def acount_pending(self) -> int:
        return await sync_to_async(self.count_pending)()

    async def aclose(self) -> None:
        """Nothing to close: Django owns the database connections."""
