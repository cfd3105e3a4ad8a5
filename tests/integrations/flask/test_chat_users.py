"""``flask chatauth chat-user`` and the ``chat_user_changed`` signal, against the CometChat
emulator; the named refusal of a provider without the call."""

from __future__ import annotations

from typing import Any

from chatauth.integrations.flask import chat_user_changed, get_service
from flask import Flask

from chatauth.chat_users import ChatUserChange
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator

from .apps import USERS
from .conftest import AppFactory

#: The chat display names the app gives its users (NAME_ATTRIBUTE points here).
NAMES: dict[str, str] = {}


def display_name(user: Any) -> str | None:
    return NAMES.get(user.id)


def cometchat_app(make_app: AppFactory, emulator: CometChatEmulator) -> Flask:
    return make_app(
        {
            "CHATAUTH_PROVIDER": "cometchat",
            "CHATAUTH_JWT_SECRET": None,
            "CHATAUTH_COMETCHAT_APP_ID": emulator.app_id,
            "CHATAUTH_COMETCHAT_REGION": emulator.region,
            "CHATAUTH_COMETCHAT_API_KEY": DEFAULT_API_KEY,
            "CHATAUTH_COMETCHAT_BASE_URL": emulator.base_url,
            "CHATAUTH_NAME_ATTRIBUTE": f"{__name__}.display_name",
        }
    )


def test_chat_user_update_deactivate_erase(
    make_app: AppFactory, cometchat_emulator: CometChatEmulator
) -> None:
    app = cometchat_app(make_app, cometchat_emulator)
    seen: list[tuple[Flask, ChatUserChange]] = []

    def record(sender: Flask, change: ChatUserChange, **extra: Any) -> None:
        seen.append((sender, change))

    NAMES["alice"] = "Alice"
    try:
        with app.app_context():
            uid = get_service().get_session(USERS["alice"], "s1").uid
        NAMES["alice"] = "Alice Liddell"
        runner = app.test_cli_runner()
        with chat_user_changed.connected_to(record, app):
            result = runner.invoke(args=["chatauth", "chat-user", "update", "alice", "--app-user"])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == f"chat-user: update uid={uid} done ended=0"
        assert cometchat_emulator.users[uid]["name"] == "Alice Liddell"
        assert [(s, c.operation, c.done) for s, c in seen] == [(app, "update", True)]

        result = runner.invoke(args=["chatauth", "chat-user", "deactivate", uid])
        assert result.exit_code == 0, result.output
        assert f"deactivate uid={uid} done ended=1" in result.output
        assert uid in cometchat_emulator.deactivated

        result = runner.invoke(args=["chatauth", "chat-user", "erase", uid])
        assert result.exit_code == 0, result.output
        assert uid not in cometchat_emulator.deactivated

        # update needs the app user: the profile comes from it.
        result = runner.invoke(args=["chatauth", "chat-user", "update", uid])
        assert result.exit_code == 2
    finally:
        NAMES.clear()


def test_chat_user_queued_during_an_outage_exits_1(
    make_app: AppFactory, cometchat_emulator: CometChatEmulator
) -> None:
    app = cometchat_app(make_app, cometchat_emulator)
    with app.app_context():
        uid = get_service().get_session(USERS["bob"], "s1").uid
    cometchat_emulator.faults.status(503, times=50)
    result = app.test_cli_runner().invoke(args=["chatauth", "chat-user", "erase", uid])
    cometchat_emulator.faults.clear()
    assert result.exit_code == 1
    assert "queued (ERROR_PROVIDER_UNAVAILABLE)" in result.output
    result = app.test_cli_runner().invoke(args=["chatauth", "revoke-pending"])
    assert result.exit_code == 0, result.output
    assert uid not in cometchat_emulator.users


def test_a_provider_without_the_call_refuses_it_by_name(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["chatauth", "chat-user", "erase", "user-alice"])
    assert result.exit_code == 2
    assert "ERROR_UNSUPPORTED_OPERATION" in result.output
