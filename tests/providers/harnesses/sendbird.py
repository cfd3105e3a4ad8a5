"""Sendbird against its emulator; a token is alive if the client could connect with it."""

from __future__ import annotations

from typing import Any

import pytest

from chatauth.providers.sendbird import SendbirdProvider
from chatauth.testing.sendbird import DEFAULT_API_TOKEN, DEFAULT_APP_ID, SendbirdEmulator
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness

MAKES_HTTP_CALLS = True


def offline(url: str) -> SendbirdProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return SendbirdProvider(DEFAULT_APP_ID, DEFAULT_API_TOKEN, base_url=url)


@pytest.fixture(name="harness_sendbird")
def harness_sendbird(sendbird_emulator: SendbirdEmulator) -> Harness:
    def is_alive(token: ChatToken) -> bool:
        return sendbird_emulator.is_session_token_alive(token.uid, token.value)

    def issue_calls() -> int:
        return sum(
            1
            for call in sendbird_emulator.calls
            if call.method == "POST" and call.path.endswith("/token")
        )

    def chat_user(uid: str) -> dict[str, Any] | None:
        user = sendbird_emulator.users.get(uid)
        if user is None:
            return None
        avatar = user["profile_url"] or None
        return {"name": user["nickname"], "avatar": avatar, "active": user["is_active"]}

    return Harness(
        name="sendbird",
        provider=SendbirdProvider(
            DEFAULT_APP_ID, DEFAULT_API_TOKEN, base_url=sendbird_emulator.base_url
        ),
        make_bad_provider=lambda: SendbirdProvider(
            DEFAULT_APP_ID, "wrong-api-token", base_url=sendbird_emulator.base_url
        ),
        is_alive=is_alive,
        faults=sendbird_emulator.faults,
        issue_calls=issue_calls,
        chat_user=chat_user,
    )
