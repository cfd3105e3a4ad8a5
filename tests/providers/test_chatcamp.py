"""ChatCamp specifics (best effort, see the provider docstring): token for
``connect(uid, accessToken)``, race-safe creation, revocation by rotation, ``ok: false``
errors."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, ProviderError, from_settings
from chatauth.http import run_flow
from chatauth.providers.chatcamp import ChatCampProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.chatcamp import DEFAULT_API_KEY, DEFAULT_APP_ID, ChatCampEmulator


def provider(emulator: ChatCampEmulator, key: str = DEFAULT_API_KEY) -> ChatCampProvider:
    return ChatCampProvider(DEFAULT_APP_ID, key, base_url=emulator.base_url)


def test_new_user_gets_a_token_the_client_can_connect_with(
    chatcamp_emulator: ChatCampEmulator,
) -> None:
    chat = ChatAuth(provider(chatcamp_emulator), MemoryStore(), token_ttl=timedelta(minutes=30))
    session = chat.get_session(ChatIdentity("alice", name="Alice"), "s1")
    assert chatcamp_emulator.users["alice"]["display_name"] == "Alice"
    assert chatcamp_emulator.connect("alice", session.token.value)
    assert not chatcamp_emulator.connect("alice")  # a user with a token needs it
    assert session.token.expires_at is None
    assert session.token.refresh_at == session.token.issued_at + timedelta(minutes=30)
    assert session.client == {"app_id": DEFAULT_APP_ID}
    chat.close()


def test_user_created_by_another_worker_meanwhile(chatcamp_emulator: ChatCampEmulator) -> None:
    p = provider(chatcamp_emulator)
    flow = p.issue(ChatIdentity("bob"), timedelta(hours=1))
    with httpx.Client() as client:
        request = next(flow)  # users.update -> user_not_found
        request = flow.send(client.send(request))
        assert request.url.path.endswith("/users.create")
        other = httpx.post(  # the other worker creates the user now
            chatcamp_emulator.base_url + "/users.create",
            headers={"x-app-id": DEFAULT_APP_ID, "x-api-key": DEFAULT_API_KEY},
            json={"id": "bob", "display_name": "Bob"},
        )
        assert other.json()["ok"] is True
        request = flow.send(client.send(request))  # user_already_exists -> update again
        assert request.url.path.endswith("/users.update")
        try:
            flow.send(client.send(request))
        except StopIteration as stop:
            token = stop.value
    assert chatcamp_emulator.connect("bob", token.value)


def test_end_session_rotates_the_token_away(chatcamp_emulator: ChatCampEmulator) -> None:
    chat = ChatAuth(provider(chatcamp_emulator), MemoryStore())
    token = chat.get_session(ChatIdentity("alice"), "s1").token
    chat.end_session(ChatIdentity("alice"), "s1")
    assert not chatcamp_emulator.connect("alice", token.value)
    assert not chatcamp_emulator.connect("alice")  # still needs a token: not left open
    assert chatcamp_emulator.token_of("alice") not in (None, token.value)
    chat.close()


def test_one_token_per_user_a_second_session_replaces_the_first(
    chatcamp_emulator: ChatCampEmulator,
) -> None:
    """ChatCamp keeps one access token per user (emulator decision, documented): the second
    app session's token replaces the first's."""
    chat = ChatAuth(provider(chatcamp_emulator), MemoryStore())
    one = chat.get_session(ChatIdentity("alice"), "laptop").token
    two = chat.get_session(ChatIdentity("alice"), "phone").token
    assert chatcamp_emulator.connect("alice", two.value)
    assert not chatcamp_emulator.connect("alice", one.value)
    chat.close()


def test_ok_false_errors_become_provider_errors(chatcamp_emulator: ChatCampEmulator) -> None:
    with httpx.Client() as client, pytest.raises(ProviderError) as info:
        run_flow(
            provider(chatcamp_emulator, "wrong-key").issue(ChatIdentity("a"), timedelta(hours=1)),
            client,
            provider="chatcamp",
        )
    assert (info.value.status, info.value.code) == (400, "invalid_auth")
    assert "wrong-key" not in str(info.value)


def test_settings() -> None:
    chat = from_settings(
        {
            "PROVIDER": "chatcamp",
            "CHATCAMP_APP_ID": "app",
            "CHATCAMP_API_KEY": "key",
            "STORE": "memory://",
        }
    )
    assert isinstance(chat.provider, ChatCampProvider)
    assert chat.provider.base_url == "https://api.chatcamp.io/api/1.0"
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "chatcamp", "CHATCAMP_APP_ID": "app", "STORE": "memory://"})
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
