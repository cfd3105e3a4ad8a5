"""CometChat Calls variant against the CometChat emulator: the Calls SDK logs in with the same
UID and Chat auth token, so a token is alive if ``PUT /v3.0/me`` accepts it."""

from __future__ import annotations

import pytest

from chatauth.providers.cometchat import CometChatCallsProvider
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator
from tests.providers.conformance import Harness
from tests.providers.harnesses.cometchat import cometchat_harness

MAKES_HTTP_CALLS = True


def offline(url: str) -> CometChatCallsProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return CometChatCallsProvider(DEFAULT_APP_ID, DEFAULT_API_KEY, base_url=url)


@pytest.fixture(name="harness_cometchat_calls")
def harness_cometchat_calls(cometchat_emulator: CometChatEmulator) -> Harness:
    return cometchat_harness("cometchat_calls", CometChatCallsProvider, cometchat_emulator)
