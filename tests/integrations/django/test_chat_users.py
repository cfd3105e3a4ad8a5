"""The chat user follows the Django user, on PostgreSQL: the opt-in ``post_save`` update,
deactivation when ``is_active`` turns false, erasure on ``post_delete``, each after the
transaction commits; a provider outage is queued in the PostgreSQL pending table and finished
by ``chatauth_revoke_pending``; the management command; the E009 check.

The whole app database (users and chatauth's tables) is a real PostgreSQL database, reached
through :class:`~tests.integrations.django.routers.EverythingRouter`; transactions commit for
real, so ``on_commit`` runs as in production. The provider is the CometChat emulator.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from chatauth.integrations.django.conf import get_service, reset
from chatauth.integrations.django.signals import chat_user_changed
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections, transaction
from django.test import override_settings

from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.integrations.django.routers import EverythingRouter

pytestmark = pytest.mark.postgres

ROUTER = "tests.integrations.django.routers.EverythingRouter"
ALIAS = EverythingRouter.alias


@pytest.fixture(scope="module")
def everything_pg(postgres_server: Any, django_db_blocker: Any) -> Iterator[str]:
    name = f"chatauth_users_{uuid.uuid4().hex[:8]}"
    postgres_server.create_database(name)
    connections.settings[ALIAS] = connections.configure_settings(
        {
            "default": {},
            ALIAS: {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": name,
                "USER": postgres_server.user,
                "HOST": postgres_server.host,
                "PORT": str(postgres_server.port),
            },
        }
    )[ALIAS]
    with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[ROUTER]):
        call_command("migrate", database=ALIAS, verbosity=0)
    yield ALIAS
    with django_db_blocker.unblock():
        connections[ALIAS].close()


def chatauth_settings(emulator: CometChatEmulator, **opt_ins: bool) -> dict[str, Any]:
    return {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": emulator.app_id,
        "COMETCHAT_REGION": emulator.region,
        "COMETCHAT_API_KEY": DEFAULT_API_KEY,
        "COMETCHAT_BASE_URL": emulator.base_url,
        "NAME_ATTRIBUTE": "first_name",
        "AVATAR_ATTRIBUTE": "last_name",  # any text attribute will do for a test
        **{key.upper(): value for key, value in opt_ins.items()},
    }


@pytest.fixture
def app(everything_pg: str, django_db_blocker: Any, cometchat_emulator: CometChatEmulator):
    """Runs the test with every model on PostgreSQL; yields a function that applies the
    CHATAUTH settings (with the given opt-ins) and returns the service."""
    applied: list[Any] = []

    def configure(**opt_ins: bool) -> Any:
        while applied:
            applied.pop().disable()
        override = override_settings(CHATAUTH=chatauth_settings(cometchat_emulator, **opt_ins))
        override.enable()
        applied.append(override)
        reset()
        return get_service()

    with django_db_blocker.unblock(), override_settings(DATABASE_ROUTERS=[ROUTER]):
        get_user_model().objects.all().delete()
        try:
            yield configure
        finally:
            while applied:
                applied.pop().disable()
            reset()


def new_user(name: str = "Alice") -> Any:
    username = f"u{uuid.uuid4().hex[:10]}"
    return get_user_model().objects.create_user(username, first_name=name, password="pw-123456")


def updates(emulator: CometChatEmulator) -> int:
    return sum(1 for c in emulator.calls if c.method == "PUT" and c.path.startswith("/v3/users/"))


def test_opt_ins_are_off_by_default(app: Any, cometchat_emulator: CometChatEmulator) -> None:
    service = app()
    user = new_user()
    uid = service.get_session(user, "s1").uid
    user.first_name = "Renamed"
    user.save()
    user.is_active = False
    user.save()
    user.delete()
    assert updates(cometchat_emulator) == 0
    assert cometchat_emulator.users[uid]["name"] == "Alice"
    assert len(service.store.sessions(uid=uid)) == 1


def test_a_changed_name_is_pushed_after_the_commit(
    app: Any, cometchat_emulator: CometChatEmulator
) -> None:
    service = app(update_chat_user_on_save=True)
    seen: list[Any] = []
    chat_user_changed.connect(lambda sender, change, **kw: seen.append(change), weak=False)
    user = new_user("Alice")
    uid = service.get_session(user, "s1").uid
    try:
        with transaction.atomic(using=ALIAS):
            user.first_name = "Alice Liddell"
            user.last_name = "https://example.org/alice.png"
            user.save()
            # Not yet: the transaction may still roll back.
            assert cometchat_emulator.users[uid]["name"] == "Alice"
        chat_user = cometchat_emulator.users[uid]
        assert chat_user["name"] == "Alice Liddell"
        assert chat_user["avatar"] == "https://example.org/alice.png"
        assert [(c.operation, c.uid, c.done) for c in seen] == [("update", uid, True)]
        # A save that changes nothing the chat shows makes no call.
        user.email = "alice@example.org"
        user.save()
        assert updates(cometchat_emulator) == 1
        # A rolled-back rename never reaches the provider.
        with transaction.atomic(using=ALIAS):
            user.first_name = "Never"
            user.save()
            transaction.set_rollback(True, using=ALIAS)
        assert cometchat_emulator.users[uid]["name"] == "Alice Liddell"
    finally:
        chat_user_changed.receivers.clear()


def test_is_active_false_deactivates_after_ending_every_session(
    app: Any, cometchat_emulator: CometChatEmulator
) -> None:
    service = app(deactivate_chat_user_on_inactive=True, update_chat_user_on_save=True)
    user = new_user()
    one = service.get_session(user, "s1").token
    service.get_session(user, "s2")
    uid = one.uid
    user.is_active = False
    user.save()
    assert service.store.sessions(uid=uid) == []
    assert uid not in cometchat_emulator.users
    assert uid in cometchat_emulator.deactivated
    assert cometchat_emulator.tokens_of(uid) == []
    # Saving the inactive user again does not deactivate twice.
    calls = len(cometchat_emulator.calls)
    user.save()
    assert len(cometchat_emulator.calls) == calls


def test_deleting_the_user_erases_the_chat_user(
    app: Any, cometchat_emulator: CometChatEmulator
) -> None:
    service = app(erase_chat_user_on_delete=True)
    user = new_user()
    uid = service.get_session(user, "s1").uid
    user.delete()
    assert uid not in cometchat_emulator.users
    assert uid not in cometchat_emulator.deactivated  # permanently deleted
    assert service.store.sessions(uid=uid) == []


def test_an_outage_never_breaks_the_save_and_is_finished_later(
    app: Any, cometchat_emulator: CometChatEmulator
) -> None:
    service = app(erase_chat_user_on_delete=True)
    user = new_user()
    uid = service.get_session(user, "s1").uid
    cometchat_emulator.faults.status(503, times=50)
    user.delete()  # no exception: the app's delete succeeds
    cometchat_emulator.faults.clear()
    assert uid in cometchat_emulator.users
    # The token revocation and the erase are both queued, in PostgreSQL.
    assert service.store.count_pending() == 2
    assert connections[ALIAS].vendor == "postgresql"
    out = io.StringIO()
    call_command("chatauth_revoke_pending", stdout=out)
    assert "revoked=2 failed=0 remaining=0" in out.getvalue()
    assert uid not in cometchat_emulator.users
    assert uid not in cometchat_emulator.deactivated


def test_the_management_command(app: Any, cometchat_emulator: CometChatEmulator) -> None:
    service = app()
    user = new_user("Bob")
    uid = service.get_session(user, "s1").uid
    user.first_name = "Robert"
    user.save()
    out = io.StringIO()
    call_command("chatauth_chat_user", "update", "--user", user.username, stdout=out)
    assert out.getvalue().strip() == f"chat-user: update uid={uid} done ended=0"
    assert cometchat_emulator.users[uid]["name"] == "Robert"
    out = io.StringIO()
    call_command("chatauth_chat_user", "deactivate", "--user", user.username, stdout=out)
    assert f"chat-user: deactivate uid={uid} done ended=1" in out.getvalue()
    user.delete()
    # The app user is gone: erase by UID.
    call_command("chatauth_chat_user", "erase", "--uid", uid, stdout=io.StringIO())
    assert uid not in cometchat_emulator.deactivated
    with pytest.raises(CommandError) as info:
        call_command("chatauth_chat_user", "update", "--uid", uid)
    assert info.value.returncode == 2
    other = new_user("Carol")
    service.get_session(other, "s1")
    cometchat_emulator.faults.status(503, times=50)
    with pytest.raises(CommandError) as info:
        call_command("chatauth_chat_user", "erase", "--user", other.username, stdout=out)
    cometchat_emulator.faults.clear()
    assert info.value.returncode == 1  # queued: revoke-pending finishes it


def test_a_failure_that_cannot_be_queued_is_logged_with_the_fix(
    app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app()
    jwt = {"PROVIDER": "jwt", "JWT_SECRET": "chatauth-tests-jwt-secret-0123456789abcdef"}
    with override_settings(CHATAUTH={**jwt, "ERASE_CHAT_USER_ON_DELETE": True}):
        reset()
        user = new_user()
        uid, pk = get_service().identity_for(user).uid, user.pk
        with caplog.at_level(logging.ERROR, logger="chatauth.django"):
            user.delete()  # the delete itself succeeds
    reset()
    assert not get_user_model().objects.filter(pk=pk).exists()
    [record] = [r for r in caplog.records if r.name == "chatauth.django"]
    assert "ERROR_UNSUPPORTED_OPERATION" in record.getMessage()
    assert f"chatauth_chat_user erase --uid {uid}" in record.getMessage()


def test_an_opt_in_the_provider_cannot_do_is_a_check_error(app: Any) -> None:
    with override_settings(
        CHATAUTH={
            "PROVIDER": "jwt",
            "JWT_SECRET": "chatauth-tests-jwt-secret-0123456789abcdef",
            "ERASE_CHAT_USER_ON_DELETE": True,
        }
    ):
        reset()
        errors = [m for m in checks.run_checks() if m.id == "chatauth.E009"]
    reset()
    assert len(errors) == 1
    assert "ERASE_CHAT_USER_ON_DELETE" in errors[0].msg
