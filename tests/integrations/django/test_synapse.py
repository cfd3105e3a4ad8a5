"""Ending chat sessions against a real Synapse (Matrix provider, JWT login), in process:
logout, the admin action, ``chatauth_end_sessions``, a password change, a provider outage
(queued revocation, then ``chatauth_revoke_pending``), the sweep of tokens no longer served,
``chatauth_check``, and the Django signals."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from chatauth.integrations.django.models import ChatToken, PendingRevocation
from chatauth.integrations.django.signals import chat_session_ended, chat_session_started
from django.core.management import CommandError, call_command
from django.test import Client

pytestmark = [pytest.mark.synapse, pytest.mark.django_db(transaction=True)]


def matrix_settings(synapse: Any, **extra: Any) -> dict[str, Any]:
    return {
        "PROVIDER": "matrix",
        "MATRIX_HOMESERVER_URL": synapse.base_url,
        "MATRIX_SERVER_NAME": synapse.server_name,
        "MATRIX_JWT_SECRET": synapse.jwt_secret,
        "UID_MAPPER": "username",
        "TIMEOUT": 2,
        **extra,
    }


@pytest.fixture
def matrix(settings: Any, synapse: Any) -> Any:
    settings.CHATAUTH = matrix_settings(synapse)
    return synapse


def token_of(client: Client) -> str:
    response = client.get("/chat/token")
    assert response.status_code == 200, response.content
    return str(response.json()["token"])


def alive(synapse: Any, token: str) -> bool:
    response = synapse.whoami(token)
    if response.status_code == 401:
        assert response.json()["errcode"] == "M_UNKNOWN_TOKEN"
        return False
    assert response.status_code == 200, response.text
    return True


def test_logout_revokes_only_that_sessions_token(matrix: Any, user: Any) -> None:
    laptop, phone = Client(), Client()
    laptop.force_login(user)
    phone.force_login(user)
    laptop_token, phone_token = token_of(laptop), token_of(phone)
    assert matrix.whoami(laptop_token).json()["user_id"] == "@user-alice:localhost"
    laptop.post("/accounts/logout/")
    assert not alive(matrix, laptop_token)
    assert alive(matrix, phone_token)


def test_admin_lists_sessions_without_tokens_and_ends_chosen_ones(
    matrix: Any, user: Any, admin_client: Client
) -> None:
    client = Client()
    client.force_login(user)
    token = token_of(client)
    listing = admin_client.get("/admin/chatauth/chattoken/")
    assert listing.status_code == 200
    row = ChatToken.objects.get()
    page = listing.content.decode()
    assert row.uid in page and row.fingerprint in page
    assert token not in page
    detail = admin_client.get(f"/admin/chatauth/chattoken/{row.pk}/change/").content.decode()
    assert row.fingerprint in detail and token not in detail
    response = admin_client.post(
        "/admin/chatauth/chattoken/",
        {"action": "end_sessions", "_selected_action": [row.pk]},
        follow=True,
    )
    assert "Ended 1 chat session." in response.content.decode()
    assert ChatToken.objects.count() == 0
    assert not alive(matrix, token)
    assert client.get("/chat/token").json()["token"] != token  # a fresh one on next request


def test_end_sessions_command_ends_every_session_of_one_user(
    matrix: Any, user: Any, other_user: Any
) -> None:
    one, two, bob = Client(), Client(), Client()
    one.force_login(user)
    two.force_login(user)
    bob.force_login(other_user)
    tokens = [token_of(one), token_of(two)]
    bob_token = token_of(bob)
    call_command("chatauth_end_sessions", "--user", "alice")
    assert [alive(matrix, t) for t in tokens] == [False, False]
    assert alive(matrix, bob_token)
    with pytest.raises(CommandError):
        call_command("chatauth_end_sessions", "--user", "nobody")


@pytest.mark.parametrize("setting", [True, False])
def test_password_change_ends_all_chat_sessions_when_set(
    settings: Any, synapse: Any, user: Any, setting: bool
) -> None:
    settings.CHATAUTH = matrix_settings(synapse, END_SESSIONS_ON_PASSWORD_CHANGE=setting)
    one, two = Client(), Client()
    one.force_login(user)
    two.force_login(user)
    tokens = [token_of(one), token_of(two)]
    user.last_login = datetime.now(timezone.utc)
    user.save(update_fields=["last_login"])  # not a password change
    assert [alive(synapse, t) for t in tokens] == [True, True]
    user.set_password("a-new-password")
    user.save()
    assert [alive(synapse, t) for t in tokens] == [not setting, not setting]


def test_outage_queues_the_revocation_and_revoke_pending_finishes_it(
    settings: Any, synapse_factory: Any, user: Any
) -> None:
    homeserver = synapse_factory()
    settings.CHATAUTH = matrix_settings(homeserver)
    client = Client()
    client.force_login(user)
    token = token_of(client)
    homeserver.stop()
    newcomer = Client()
    newcomer.force_login(user)
    down = newcomer.get("/chat/token")
    assert down.status_code == 503
    assert int(down["Retry-After"]) >= 1
    assert down.json()["error"]["code"] == "ERROR_PROVIDER_UNAVAILABLE"
    client.post("/accounts/logout/")  # logging out of the app still works
    assert ChatToken.objects.count() == 0
    assert PendingRevocation.objects.count() == 1
    with pytest.raises(CommandError, match="failed again"):
        call_command("chatauth_revoke_pending")
    assert PendingRevocation.objects.get().attempts == 2
    homeserver.restart()
    assert alive(homeserver, token)  # nothing silently forgot it: still to be revoked
    call_command("chatauth_revoke_pending")
    assert PendingRevocation.objects.count() == 0
    assert not alive(homeserver, token)


def test_sweep_revokes_tokens_no_longer_served(matrix: Any, user: Any) -> None:
    client = Client()
    client.force_login(user)
    token = token_of(client)
    # The app session expired long ago: chatauth would not serve this token any more.
    ChatToken.objects.update(usable_until=datetime.now(timezone.utc) - timedelta(minutes=1))
    call_command("chatauth_revoke_pending", "--limit", "10")
    assert ChatToken.objects.count() == 0
    assert not alive(matrix, token)


def test_check_command_reaches_the_homeserver(matrix: Any, capsys: Any) -> None:
    call_command("chatauth_check")
    out = capsys.readouterr().out
    assert "provider: ok" in out
    assert "provider=matrix" in out
    assert "org.matrix.login.jwt" in out
    assert matrix.jwt_secret not in out


def test_check_command_fails_on_a_wrong_secret(settings: Any, synapse: Any) -> None:
    wrong = "wrong-admin-token-7f3a9c"
    settings.CHATAUTH = matrix_settings(synapse, MATRIX_MODE="admin", MATRIX_ADMIN_TOKEN=wrong)
    with pytest.raises(CommandError, match="provider check failed") as raised:
        call_command("chatauth_check")
    assert "M_UNKNOWN_TOKEN" in str(raised.value)
    assert wrong not in str(raised.value)


def test_signals_are_sent(matrix: Any, user: Any) -> None:
    started: list[dict[str, Any]] = []
    ended: list[dict[str, Any]] = []

    def on_started(**kwargs: Any) -> None:
        started.append(kwargs)

    def on_ended(**kwargs: Any) -> None:
        ended.append(kwargs)

    chat_session_started.connect(on_started)
    chat_session_ended.connect(on_ended)
    try:
        client = Client()
        client.force_login(user)
        token = token_of(client)
        token_of(client)
        client.post("/accounts/logout/")
    finally:
        chat_session_started.disconnect(on_started)
        chat_session_ended.disconnect(on_ended)
    assert [s["session"].token.value for s in started] == [token]
    assert [[t.value for t in e["tokens"]] for e in ended] == [[token]]
    assert ended[0]["identity"].uid == "user-alice"
