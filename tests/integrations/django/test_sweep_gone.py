"""``manage.py chatauth_sweep`` ends the chat sessions whose Django session row is gone
(issue 13: deleting every Django session used to leave every token alive until
``SESSION_COOKIE_AGE``).

The provider is the CometChat emulator (tokens that never expire, revocation observable); the
sessions live in the test database, the tokens in the ORM store on it (SQLite) or, through a
database router, on a real PostgreSQL. Times: the service and store share a clock the test
moves (the grace for a token served a moment ago).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from chatauth.integrations.django import conf
from chatauth.integrations.django.ending import GONE_GRACE, live_session_digests
from chatauth.integrations.django.models import ChatToken as TokenRow
from chatauth.integrations.django.store import DjangoStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client, override_settings

from chatauth.identity import ChatIdentity
from chatauth.service import ChatAuth
from chatauth.testing.clock import ManualClock
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.integrations.django.conftest import ROUTER
from tests.integrations.django.routers import ChatAuthRouter

# Test transactions, not TransactionTestCase: its flush of the PostgreSQL alias would write
# content types there, which only the chatauth tables were migrated into.
SQLITE = pytest.param("sqlite", marks=pytest.mark.django_db)
POSTGRES = pytest.param(
    "postgres",
    marks=[
        pytest.mark.postgres,
        pytest.mark.django_db(databases=["default", ChatAuthRouter.alias]),
    ],
)


@pytest.fixture(params=[SQLITE, POSTGRES])
def tokens_db(request: pytest.FixtureRequest, postgres_alias: str) -> Iterator[str]:
    """Where the ORM store keeps the tokens: the test database, or PostgreSQL via a router.
    (``postgres_alias``, session-scoped, registers the alias before pytest-django sets the
    test's databases up.)"""
    routers = [ROUTER] if request.param == "postgres" else []
    with override_settings(DATABASE_ROUTERS=routers):
        yield str(request.param)


@pytest.fixture
def emulator(serve_emulator: Callable[[CometChatEmulator], CometChatEmulator]) -> CometChatEmulator:
    return serve_emulator(CometChatEmulator())


@pytest.fixture
def clock(emulator: CometChatEmulator, tokens_db: str) -> Iterator[ManualClock]:
    chat = {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": emulator.app_id,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": emulator.base_url,
    }
    # override_settings as a context, nested in tokens_db's: undone in the reverse order.
    with override_settings(CHATAUTH=chat):
        clock = ManualClock()
        conf.reset()
        service = conf.build_chatauth(clock=clock, store=DjangoStore(clock=clock))
        conf._instance = conf._connect_signals(service)
        alias = "default" if tokens_db == "sqlite" else ChatAuthRouter.alias
        assert TokenRow.objects.db == alias
        try:
            yield clock
        finally:
            conf.reset()


def sweep() -> str:
    out = io.StringIO()
    call_command("chatauth_sweep", stdout=out)
    return out.getvalue()


def chat_token(client: Client) -> str:
    answer = client.get("/chat/token")
    assert answer.status_code == 200, answer.content
    value: str = answer.json()["token"]
    return value


def test_a_chat_session_whose_session_row_is_deleted_is_ended(
    client: Client, user: Any, other_user: Any, emulator: CometChatEmulator, clock: ManualClock
) -> None:
    client.force_login(user)
    gone = chat_token(client)
    kept_client = Client()
    kept_client.force_login(other_user)
    kept = chat_token(kept_client)
    assert len(live_session_digests("cometchat") or ()) == 2

    clock.advance(GONE_GRACE.total_seconds() + 1)
    assert "sessions-gone: ended=0 queued=0" in sweep()  # both rows exist

    Session.objects.filter(session_key=client.session.session_key).delete()  # e.g. an admin
    out = sweep()
    assert "sessions-gone: ended=1 queued=0" in out
    assert "sweep: swept=0 " in out  # not idle: only the gone session did it
    assert not emulator.is_token_alive(gone)
    assert emulator.is_token_alive(kept)
    assert TokenRow.objects.count() == 1
    assert "sessions-gone: ended=0 queued=0" in sweep()


def test_expired_rows_count_as_gone_and_a_just_served_token_waits_for_the_grace(
    client: Client, user: Any, emulator: CometChatEmulator, clock: ManualClock
) -> None:
    client.force_login(user)
    token = chat_token(client)
    Session.objects.update(expire_date=clock.now() - timedelta(seconds=1))  # expired, not cleared
    # Served a moment ago: the request that bound it may not have saved its session yet.
    assert "sessions-gone: ended=0 queued=0" in sweep()
    assert emulator.is_token_alive(token)
    clock.advance(GONE_GRACE.total_seconds() + 1)
    assert "sessions-gone: ended=1 queued=0" in sweep()
    assert not emulator.is_token_alive(token)


def test_a_revocation_that_fails_is_queued_and_retried_by_the_same_run(
    client: Client, user: Any, emulator: CometChatEmulator, clock: ManualClock
) -> None:
    client.force_login(user)
    token = chat_token(client)
    Session.objects.all().delete()
    clock.advance(GONE_GRACE.total_seconds() + 1)
    emulator.faults.status(503, times=3, method="DELETE")  # every try of the first revocation
    out = sweep()
    assert "sessions-gone: ended=1 queued=1" in out
    assert "revoke-pending: revoked=1 failed=0 remaining=0" in out
    assert not emulator.is_token_alive(token)


def test_a_chat_session_without_an_app_session_is_never_taken_for_gone(
    user: Any, emulator: CometChatEmulator, clock: ManualClock
) -> None:
    """Token-auth APIs: one chat session per user, no session row to look for."""
    service: ChatAuth = conf.get_service()
    token = service.get_session(ChatIdentity(f"user-{user.pk}")).token
    clock.advance(GONE_GRACE.total_seconds() + 1)
    assert "sessions-gone: ended=0 queued=0" in sweep()
    assert emulator.is_token_alive(token.value)


@pytest.mark.parametrize(
    "engine",
    ["django.contrib.sessions.backends.signed_cookies", "django.contrib.sessions.backends.cache"],
)
def test_sessions_outside_the_database_are_left_to_the_idle_sweep(
    client: Client, user: Any, emulator: CometChatEmulator, clock: ManualClock, engine: str
) -> None:
    client.force_login(user)
    token = chat_token(client)
    clock.advance(GONE_GRACE.total_seconds() + 1)
    with override_settings(SESSION_ENGINE=engine):
        out = sweep()
    assert "sessions-gone" not in out
    assert "sweep: swept=0 " in out
    assert emulator.is_token_alive(token)
