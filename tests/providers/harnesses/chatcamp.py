"""ChatCamp against its emulator; a token is alive if the client's ``connect(uid,
accessToken)`` would succeed."""

from __future__ import annotations

from typing import Any

import pytest

from chatauth.providers.chatcamp import ChatCampProvider
from chatauth.testing.chatcamp import DEFAULT_API_KEY, DEFAULT_APP_ID, ChatCampEmulator
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness

MAKES_HTTP_CALLS = True


def offline(url: str) -> ChatCampProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return ChatCampProvider(DEFAULT_APP_ID, DEFAULT_API_KEY, base_url=url)


@pytest.fixture(name="harness_chatcamp")
def harness_chatcamp(chatcamp_emulator: ChatCampEmulator) -> Harness:
    def is_alive(token: ChatToken) -> bool:
        return chatcamp_emulator.connect(token.uid, token.value)

    def chat_user(uid: str) -> dict[str, Any] | None:
        user = chatcamp_emulator.users.get(uid)
        if user is None:
            return None
        avatar = user.get("avatar_url") or None
        return {"name": user["display_name"], "avatar": avatar, "active": True}

    return Harness(
        name="chatcamp",
        provider=ChatCampProvider(
            DEFAULT_APP_ID, DEFAULT_API_KEY, base_url=chatcamp_emulator.base_url
        ),
        make_bad_provider=lambda: ChatCampProvider(
            DEFAULT_APP_ID, "wrong-api-key", base_url=chatcamp_emulator.base_url
        ),
        is_alive=is_alive,
        faults=chatcamp_emulator.faults,
        one_token_per_user=True,
        issue_calls=lambda: chatcamp_emulator.calls.count_of(
            "POST", "/api/2.0/users.", prefix=True
        ),
        chat_user=chat_user,
    )
