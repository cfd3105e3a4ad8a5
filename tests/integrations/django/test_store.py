"""The ORM store (``DjangoStore``) on SQLite (the test database) and on a real PostgreSQL
reached through a database router, in sync and async form."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import pytest
from chatauth.integrations.django.models import ChatToken as TokenRow
from chatauth.integrations.django.models import IssueLock
from chatauth.integrations.django.models import PendingRevocation as PendingRow
from chatauth.integrations.django.store import DjangoStore
from django.db import connections
from django.test import override_settings

from chatauth import ChatAuth, ChatIdentity
from chatauth.errors import StoreUnavailableError
from chatauth.journal import EndJournal
from chatauth.stores.base import LockTimeoutError
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken, SessionKey
from tests.core.providers import UserRevokingProvider
from tests.integrations.django.conftest import ROUTER, add_database
from tests.integrations.django.routers import ChatAuthRouter
from tests.stores.sweep_contract import check_async_sweep_contract, check_sweep_contract

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[DjangoStore]:
    if request.param == "sqlite":
        request.getfixturevalue("transactional_db")
        yield DjangoStore()
        return
    request.getfixturevalue("postgres_alias")
    blocker = request.getfixturevalue("django_db_blocker")
    with blocker.unblock(), override_settings(DATABASE_ROUTERS=[ROUTER]):
        for model in (TokenRow, IssueLock, PendingRow):
            model.objects.all().delete()
        yield DjangoStore()
        assert connections[ChatAuthRouter.alias].vendor == "postgresql"


def make_token(uid: str = "user-1", *, value: str | None = None, **kwargs: Any) -> ChatToken:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    fields: dict[str, Any] = {
        "value": value or uuid.uuid4().hex,
        "uid": uid,
        "provider": "jwt",
        "issued_at": now,
        "expires_at": now + timedelta(hours=1),
        "refresh_at": now + timedelta(minutes=30),
    }
    fields.update(kwargs)
    return ChatToken(**fields)


def test_set_get_replace_pop(store: DjangoStore) -> None:
    key = SessionKey("jwt", "user-1", "app-session-secret")
    assert store.get(key) is None
    first, second = make_token(), make_token()
    store.set(key, first)
    assert store.get(key) == first
    store.set(key, second)
    assert store.get(key) == second
    assert TokenRow.objects.count() == 1
    assert store.pop(key) == second
    assert store.pop(key) is None
    assert store.get(key) is None


def test_rows_keep_digests_not_the_app_session_key(store: DjangoStore) -> None:
    key = SessionKey("jwt", "user-1", "app-session-secret")
    token = make_token()
    store.set(key, token)
    row = TokenRow.objects.get()
    assert row.key == key.digest
    assert row.user_key == key.user_digest
    assert "app-session-secret" not in str(list(TokenRow.objects.values()))
    assert row.fingerprint == token.fingerprint
    assert row.usable_until == token.refresh_at


def test_pop_user_takes_every_session_of_one_user_only(store: DjangoStore) -> None:
    mine = [make_token() for _ in range(3)]
    for n, token in enumerate(mine):
        store.set(SessionKey("jwt", "user-1", f"s{n}"), token)
    theirs = make_token("user-2")
    store.set(SessionKey("jwt", "user-2", "s0"), theirs)
    assert sorted(t.value for t in store.pop_user("jwt", "user-1")) == sorted(t.value for t in mine)
    assert store.sessions() == [theirs]
    assert store.sessions(uid="user-2") == [theirs]
    assert store.sessions(provider="matrix") == []


def test_pop_stale_takes_only_tokens_no_longer_served(store: DjangoStore) -> None:
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    stale = make_token(issued_at=past - timedelta(hours=1), refresh_at=past)
    fresh = make_token()
    store.set(SessionKey("jwt", "user-1", "old"), stale)
    store.set(SessionKey("jwt", "user-1", "new"), fresh)
    assert store.pop_stale() == [stale]
    assert store.sessions() == [fresh]


def test_lock_is_exclusive_expires_and_is_released_by_its_owner_only(
    store: DjangoStore,
) -> None:
    key = SessionKey("jwt", "user-1", "s")
    assert store._try_lock(key, "owner-a", ttl=30)
    assert not store._try_lock(key, "owner-b", ttl=30)
    store._unlock(key, "owner-b")  # not the holder: no effect
    assert not store._try_lock(key, "owner-b", ttl=30)
    store._unlock(key, "owner-a")
    assert store._try_lock(key, "owner-b", ttl=30)
    # A crashed holder's lock expires: ttl 0 means already expired for the next caller.
    other = SessionKey("jwt", "user-2", "s")
    assert store._try_lock(other, "crashed", ttl=0)
    assert store._try_lock(other, "owner-c", ttl=30)
    assert IssueLock.objects.get(key=other.digest).owner == "owner-c"


def test_lock_expiry_and_stale_tokens_follow_the_store_clock(transactional_db: None) -> None:
    clock = ManualClock()
    store = DjangoStore(clock=clock)
    key = SessionKey("jwt", "user-1", "s")
    assert store._try_lock(key, "crashed", ttl=30)
    clock.advance(29)
    assert not store._try_lock(key, "next", ttl=30)  # still within the holder's ttl
    clock.advance(1.5)
    assert store._try_lock(key, "next", ttl=30)
    assert IssueLock.objects.get(key=key.digest).expires_at == clock.time() + 30
    # A token stops being served at its refresh time; only then is it stale.
    token = make_token(issued_at=clock.now(), refresh_at=clock.now() + timedelta(minutes=5))
    store.set(key, token)
    assert store.pop_stale() == []
    clock.advance(timedelta(minutes=5, seconds=1))
    assert store.pop_stale() == [token]


def test_lock_context_waits_then_gives_up(store: DjangoStore) -> None:
    key = SessionKey("jwt", "user-1", "s")
    with (
        store.lock(key, ttl=30, wait=1),
        pytest.raises(LockTimeoutError),
        store.lock(key, ttl=30, wait=0.2),
    ):
        pass
    with store.lock(key, ttl=30, wait=1):  # released after the block
        pass
    assert IssueLock.objects.count() == 0


def test_pending_revocations(store: DjangoStore) -> None:
    token = make_token()
    store.add_pending(token, "ERROR_PROVIDER_UNAVAILABLE")
    assert store.count_pending() == 1
    [entry] = store.pending()
    assert entry.token == token
    assert entry.attempts == 1
    store.retry_failed(entry, "M_UNKNOWN")
    [entry] = store.pending()
    assert (entry.attempts, entry.last_error) == (2, "M_UNKNOWN")
    store.remove_pending(entry)
    assert store.count_pending() == 0


async def test_async_twins(store: DjangoStore) -> None:
    key = SessionKey("jwt", "user-1", "s")
    token = make_token()
    await store.aset(key, token)
    assert await store.aget(key) == token
    async with store.alock(key, ttl=30, wait=1):
        assert not await store._atry_lock(key, "other", 30)
    await store.aadd_pending(token, "X")
    assert await store.acount_pending() == 1
    assert await store.apop_user("jwt", "user-1") == [token]
    assert await store.apop(key) is None


def test_encrypted_payloads(transactional_db: None) -> None:
    from chatauth.integrations.django.conf import get_service, reset
    from cryptography.fernet import Fernet

    with override_settings(
        CHATAUTH={
            "PROVIDER": "jwt",
            "JWT_SECRET": "x" * 32,
            "STORE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        }
    ):
        chatauth = get_service()
        session = chatauth.get_session(_User(7), "s")
        payload = TokenRow.objects.get().payload
        assert session.token.value not in payload
        assert chatauth.get_session(_User(7), "s").token == session.token
    reset()


class _User:
    is_authenticated = True

    def __init__(self, pk: int) -> None:
        self.pk = pk


def test_unreachable_database_is_store_unavailable(django_db_blocker: Any) -> None:
    from tests.servers.ports import free_port

    add_database(
        "chatauth_down",
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "nothing",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": str(free_port()),
        },
    )
    store = DjangoStore(using="chatauth_down")
    with django_db_blocker.unblock():
        with pytest.raises(StoreUnavailableError) as raised:
            store.get(SessionKey("jwt", "user-1", "s"))
        assert raised.value.retry_after >= 1
        with pytest.raises(StoreUnavailableError):
            store._try_lock(SessionKey("jwt", "user-1", "s"), "me", 30)


def test_sweep_contract(store: DjangoStore) -> None:
    clock = ManualClock()
    store.clock = clock  # the contract moves time: served times come from the store clock
    check_sweep_contract(store, clock)


async def test_async_sweep_contract(store: DjangoStore) -> None:
    clock = ManualClock()
    store.clock = clock
    await check_async_sweep_contract(store, clock)


def test_rows_from_before_served_at_count_as_served_when_written(store: DjangoStore) -> None:
    key = SessionKey("jwt", "user-1", "s")
    store.set(key, make_token())
    TokenRow.objects.using(store._db(TokenRow)).update(served_at=None)  # as 0001 left them
    written = TokenRow.objects.using(store._db(TokenRow)).get().updated_at
    got = store.get(key)
    assert got is not None and got.served_at == written
    now = written  # the token is still usable: only idleness can sweep it
    assert [t.value for t in store.sweep("jwt", now=now, idle_before=written)] == []
    swept = store.sweep("jwt", now=now, idle_before=written + timedelta(seconds=1))
    assert len(swept) == 1


class HookWatchingStore(DjangoStore):
    """A DjangoStore that notes, for every database statement, whether it runs inside the
    store's one hook for leaving the event loop (``_in_thread``: ``sync_to_async``)."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.local()
        self.statements: list[bool] = []

    async def _in_thread(self, func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        def hooked() -> R:
            self.inside.yes = True
            try:
                return func(*args, **kwargs)
            finally:
                self.inside.yes = False

        return await super()._in_thread(hooked)

    def _call(self, alias: str, statement: Callable[[], T]) -> T:
        self.statements.append(getattr(self.inside, "yes", False))
        return super()._call(alias, statement)


async def test_the_async_service_reaches_the_orm_only_through_the_store_hook(
    transactional_db: None, tmp_path: Path
) -> None:
    store = HookWatchingStore()
    journal = EndJournal(tmp_path / "ends")
    chat = ChatAuth(UserRevokingProvider(), store, journal=journal)
    alice, bob = ChatIdentity("alice"), ChatIdentity("bob")
    await chat.aget_session(alice, "s1")
    await chat.aget_session(alice, "s1")
    await chat.aget_session(bob, "s2")
    await chat.aend_session(bob, "s2")
    await chat.aget_session(ChatIdentity("carol"), "s3")
    # A journaled end and two idle sessions: the sweep replays the one, then asks the store
    # whether each user has other sessions before revoking (user-wide revocation).
    await chat.aget_session(ChatIdentity("dave"), "s4")
    journal.record(SessionKey("jwt", "dave", "s4"))
    later = datetime.now(timezone.utc) + timedelta(seconds=1)
    report = await chat.asweep(idle=0, now=later)
    assert (report.journaled, report.swept, report.revoked) == (1, 2, 2)
    await chat.aend_tokens([make_token("erin")])
    await chat.arevoke_pending()
    await chat.aend_all_sessions(alice)
    assert await chat.aend_session_durably(bob, "s3") == []
    assert len(store.statements) > 20
    assert all(store.statements), "a database statement ran outside the store's hook"
    await chat.aclose()
