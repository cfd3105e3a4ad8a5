"""Twilio Conversations: minted locally; a token is alive if the emulator's Access Token check
(what Twilio's edge checks for the Conversations SDK) accepts it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from chatauth.providers.twilio import TwilioProvider
from chatauth.testing.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY_SECRET,
    DEFAULT_API_KEY_SID,
    DEFAULT_SERVICE_SID,
    AccessTokenError,
    TwilioEmulator,
)
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness
from tests.servers.deadlines import REQUEST_DEADLINE

MAKES_HTTP_CALLS = False


def offline(url: str) -> TwilioProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return provider(base_url=url)


def provider(secret: str = DEFAULT_API_KEY_SECRET, base_url: str | None = None) -> TwilioProvider:
    return TwilioProvider(
        DEFAULT_ACCOUNT_SID, DEFAULT_API_KEY_SID, secret, DEFAULT_SERVICE_SID, base_url=base_url
    )


@pytest.fixture(name="harness_twilio")
def harness_twilio(twilio_emulator: TwilioEmulator) -> Harness:
    # Tokens are minted locally and checked by the emulator object; only the chat-user
    # operations (the Conversations User resource) go to the served emulator.
    emulator = twilio_emulator

    def connect(uid: str, name: str) -> None:
        # Conversations creates the User on the SDK's first connection; the REST create is
        # the same record.
        httpx.post(
            emulator.base_url + "/Users",
            data={"Identity": uid, "FriendlyName": name},
            auth=(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET),
            timeout=REQUEST_DEADLINE,
        ).raise_for_status()

    def chat_user(uid: str) -> dict[str, Any] | None:
        user = emulator.users.get(uid)
        return None if user is None else {"name": user["friendly_name"], "active": True}

    def is_alive(token: ChatToken) -> bool:
        try:
            claims = emulator.verify_access_token(token.value)
        except AccessTokenError:
            return False
        return bool(claims["grants"]["identity"] == token.uid)

    return Harness(
        name="twilio",
        provider=provider(base_url=emulator.base_url),
        make_bad_provider=lambda: provider(secret=""),
        is_alive=is_alive,
        faults=None,
        issue_calls=lambda: 0,
        chat_user=chat_user,
        connect=connect,
    )
