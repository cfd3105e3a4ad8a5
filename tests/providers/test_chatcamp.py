"""ChatCamp specifics, as the vendor's own plugin calls the API: users.get then users.create
or users.update binding a token we generate, race-safe creation, revocation by rotation."""

from __future__ import annotations

import json
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
    assert [path for _, path in chatcamp_emulator.calls] == [
        "/api/2.0/users.get",
        "/api/2.0/users.create",
    ]
    chat.close()


def test_requests_are_the_plugins() -> None:
    """Each call as iflychat.php makes it: POST to API 2.0, JSON body, x-api-key only, and
    a 43-character token of ours with check_access_token."""
    p = ChatCampProvider(DEFAULT_APP_ID, "the-key", base_url="https://api.chatcamp.io/api/2.0")
    flow = p.issue(
        ChatIdentity("alice", name="Alice", avatar="https://a.example/a.png"), timedelta(hours=1)
    )
    get = next(flow)
    assert (get.method, str(get.url)) == ("POST", "https://api.chatcamp.io/api/2.0/users.get")
    assert json.loads(get.content) == {"id": "alice"}
    assert get.headers["x-api-key"] == "the-key"
    assert "x-app-id" not in get.headers
    assert get.headers["content-type"] == "application/json"
    create = flow.send(httpx.Response(404, request=get))
    assert str(create.url).endswith("/users.create")
    body = json.loads(create.content)
    token = body.pop("access_token")
    assert len(token) == 43 and token.replace("-", "").replace("_", "").isalnum()
    assert body == {
        "id": "alice",
        "display_name": "Alice",
        "avatar_url": "https://a.example/a.png",
        "check_access_token": True,
    }
    with pytest.raises(StopIteration) as stop:
        flow.send(httpx.Response(200, json={"user": {}, "access_token": token}, request=create))
    assert stop.value.value.value == token


def test_existing_user_is_updated_with_a_new_token(chatcamp_emulator: ChatCampEmulator) -> None:
    chat = ChatAuth(provider(chatcamp_emulator), MemoryStore())
    first = chat.get_session(ChatIdentity("alice"), "s1").token
    chat.end_session(ChatIdentity("alice"), "s1")
    chatcamp_emulator.calls.clear()
    second = chat.get_session(ChatIdentity("alice", name="Alice B"), "s2").token
    assert [path for _, path in chatcamp_emulator.calls] == [
        "/api/2.0/users.get",
        "/api/2.0/users.update",
    ]
    assert second.value != first.value
    assert chatcamp_emulator.users["alice"]["display_name"] == "Alice B"
    assert chatcamp_emulator.connect("alice", second.value)
    chat.close()


def test_user_created_by_another_worker_meanwhile(chatcamp_emulator: ChatCampEmulator) -> None:
    p = provider(chatcamp_emulator)
    flow = p.issue(ChatIdentity("bob"), timedelta(hours=1))
    with httpx.Client() as client:
        request = next(flow)  # users.get -> 404
        request = flow.send(client.send(request))
        assert request.url.path.endswith("/users.create")
        other = httpx.post(  # the other worker creates the user now
            chatcamp_emulator.base_url + "/users.create",
            headers={"x-api-key": DEFAULT_API_KEY},
            json={"id": "bob", "display_name": "Bob", "access_token": "the-other-workers"},
        )
        assert other.status_code == 200
        request = flow.send(client.send(request))  # refused -> look again
        assert request.url.path.endswith("/users.get")
        request = flow.send(client.send(request))  # there now -> bind our token to it
        assert request.url.path.endswith("/users.update")
        with pytest.raises(StopIteration) as stop:
            flow.send(client.send(request))
    token = stop.value.value
    assert chatcamp_emulator.connect("bob", token.value)
    assert not chatcamp_emulator.connect("bob", "the-other-workers")


def test_a_refused_create_of_a_missing_user_is_raised(chatcamp_emulator: ChatCampEmulator) -> None:
    p = provider(chatcamp_emulator)
    flow = p.issue(ChatIdentity("bob"), timedelta(hours=1))
    request = next(flow)
    request = flow.send(httpx.Response(404, request=request))
    request = flow.send(httpx.Response(400, text="no", request=request))
    assert request.url.path.endswith("/users.get")  # still missing: the create's refusal
    with pytest.raises(ProviderError) as info:
        flow.send(httpx.Response(404, request=request))
    assert (info.value.status, info.value.code) == (400, "HTTP_400")


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
    """ChatCamp keeps one access token per user (inferred, documented): the second app
    session's token replaces the first's."""
    chat = ChatAuth(provider(chatcamp_emulator), MemoryStore())
    one = chat.get_session(ChatIdentity("alice"), "laptop").token
    two = chat.get_session(ChatIdentity("alice"), "phone").token
    assert chatcamp_emulator.connect("alice", two.value)
    assert not chatcamp_emulator.connect("alice", one.value)
    chat.close()


def test_a_refused_key_is_a_provider_error(chatcamp_emulator: ChatCampEmulator) -> None:
    with httpx.Client() as client, pytest.raises(ProviderError) as info:
        run_flow(
            provider(chatcamp_emulator, "wrong-key").issue(ChatIdentity("a"), timedelta(hours=1)),
            client,
            provider="chatcamp",
        )
    assert (info.value.status, info.value.code) == (401, "HTTP_401")
    assert "wrong-key" not in str(info.value)


def test_check(chatcamp_emulator: ChatCampEmulator) -> None:
    with httpx.Client() as client:
        assert run_flow(provider(chatcamp_emulator).check(), client, provider="chatcamp") == {
            "provider": "chatcamp",
            "app_id": DEFAULT_APP_ID,
        }
        with pytest.raises(ProviderError):
            run_flow(provider(chatcamp_emulator, "bad").check(), client, provider="chatcamp")


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
    assert chat.provider.base_url == "https://api.chatcamp.io/api/2.0"
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "chatcamp", "CHATCAMP_APP_ID": "app", "STORE": "memory://"})
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
