"""Twilio Conversations: minted locally; a token is alive if the emulator's Access Token check
(what Twilio's edge checks for the Conversations SDK) accepts it."""

from __future__ import annotations

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

MAKES_HTTP_CALLS = False


def provider(secret: str = DEFAULT_API_KEY_SECRET) -> TwilioProvider:
    return TwilioProvider(DEFAULT_ACCOUNT_SID, DEFAULT_API_KEY_SID, secret, DEFAULT_SERVICE_SID)


@pytest.fixture(name="harness_twilio")
def harness_twilio() -> Harness:
    # The token check needs no server: the emulator object verifies locally.
    emulator = TwilioEmulator()

    def is_alive(token: ChatToken) -> bool:
        try:
            claims = emulator.verify_access_token(token.value)
        except AccessTokenError:
            return False
        return bool(claims["grants"]["identity"] == token.uid)

    return Harness(
        name="twilio",
        provider=provider(),
        make_bad_provider=lambda: provider(secret=""),
        is_alive=is_alive,
        faults=None,
        issue_calls=lambda: 0,
    )
