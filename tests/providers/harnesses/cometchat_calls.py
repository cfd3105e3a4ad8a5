"""CometChat Calls variant against the CometChat emulator: the Calls SDK logs in with the same
UID and Chat auth token, so a token is alive if ``PUT /v3.0/me`` accepts it."""

from __future__ import annotations

import pytest

from chatauth.providers.cometchat import CometChatCallsProvider
from chatauth.testing.cometchat import CometChatEmulator
from tests.providers.conformance import Harness
from tests.providers.harnesses.cometchat import cometchat_harness

MAKES_HTTP_CALLS = True


@pytest.fixture(name="harness_cometchat_calls")
def harness_cometchat_calls(cometchat_emulator: CometChatEmulator) -> Harness:
    return cometchat_harness("cometchat_calls", CometChatCallsProvider, cometchat_emulator)
