"""Tokens in request URLs never reach httpx's INFO log lines."""

from __future__ import annotations

import logging

import pytest

from chatauth import ChatAuth, ChatIdentity
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_APP_ID, CometChatEmulator


def test_cometchat_revoke_url_is_logged_without_the_token(
    cometchat_emulator: CometChatEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    provider = CometChatProvider(
        DEFAULT_APP_ID, DEFAULT_API_KEY, base_url=cometchat_emulator.base_url
    )
    chat = ChatAuth(provider, MemoryStore())
    with caplog.at_level(logging.DEBUG):
        token = chat.get_session(ChatIdentity("user-log"), "s").token
        chat.end_session(ChatIdentity("user-log"), "s")
    chat.close()
    # The app's side only: the emulator's own access log plays the provider's server.
    ours = [r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "chatauth"))]
    deletes = [
        r.getMessage() for r in caplog.records if r.name == "httpx" and "DELETE" in r.getMessage()
    ]
    assert deletes, "httpx logged no DELETE line: the test would prove nothing"
    assert all("<redacted>" in line for line in deletes)
    assert not [line for line in ours if token.value in line or DEFAULT_API_KEY in line]
