"""Sendbird specifics: ``expires_at`` in Unix milliseconds, create-if-missing (race-safe on
400202), user-wide revocation, error codes, settings."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, ProviderError, from_settings
from chatauth.http import Flow
from chatauth.providers.sendbird import SendbirdProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.sendbird import DEFAULT_API_TOKEN, DEFAULT_APP_ID, SendbirdEmulator


def provider(emulator: SendbirdEmulator, token: str = DEFAULT_API_TOKEN) -> SendbirdProvider:
    return SendbirdProvider(DEFAULT_APP_ID, token, base_url=emulator.base_url)


def drive(
    flow: Flow[Any], client: httpx.Client, between: dict[int, Callable[[], None]]
) -> tuple[Any, list[httpx.Request]]:
    """Run ``flow`` step by step (``between[n]`` after the n-th response); returns the result
    and the requests sent."""
    sent: list[httpx.Request] = []
    try:
        request = next(flow)
        while True:
            sent.append(request)
            response = client.send(request)
            if len(sent) in between:
                between[len(sent)]()
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value, sent


def test_expires_at_is_unix_milliseconds(sendbird_emulator: SendbirdEmulator) -> None:
    with httpx.Client() as client:
        token, sent = drive(
            provider(sendbird_emulator).issue(ChatIdentity("alice"), timedelta(minutes=20)),
            client,
            {},
        )
    bodies = [json.loads(r.content) for r in sent if r.url.path.endswith("/token")]
    expires_ms = bodies[-1]["expires_at"]
    issued_ms = token.issued_at.timestamp() * 1000
    assert isinstance(expires_ms, int)
    assert abs(expires_ms - (issued_ms + 20 * 60 * 1000)) < 1000  # ms, absolute, ttl honoured
    assert sendbird_emulator.session_tokens_of("alice") == {token.value: expires_ms}
    assert token.expires_at is not None
    assert int(token.expires_at.timestamp() * 1000) == expires_ms


def test_missing_user_is_created_then_token_issued(sendbird_emulator: SendbirdEmulator) -> None:
    with httpx.Client() as client:
        token, sent = drive(
            provider(sendbird_emulator).issue(
                ChatIdentity("alice", name="Alice", avatar="https://a/1.png"), timedelta(hours=1)
            ),
            client,
            {},
        )
    assert [(r.method, r.url.path) for r in sent] == [
        ("POST", "/v3/users/alice/token"),
        ("POST", "/v3/users"),
        ("POST", "/v3/users/alice/token"),
    ]
    assert sent[0].headers["Api-Token"] == DEFAULT_API_TOKEN
    assert sent[0].headers["Content-Type"] == "application/json; charset=utf8"
    user = sendbird_emulator.users["alice"]
    assert (user["nickname"], user["profile_url"]) == ("Alice", "https://a/1.png")
    assert sendbird_emulator.is_session_token_alive("alice", token.value)


def test_user_created_by_another_worker_meanwhile(sendbird_emulator: SendbirdEmulator) -> None:
    def other_worker() -> None:
        httpx.post(
            sendbird_emulator.base_url + "/users",
            headers={"Api-Token": DEFAULT_API_TOKEN},
            json={"user_id": "bob", "nickname": "Bob", "profile_url": ""},
        )

    with httpx.Client() as client:
        token, sent = drive(
            provider(sendbird_emulator).issue(ChatIdentity("bob"), timedelta(hours=1)),
            client,
            {1: other_worker},
        )
    # Our create got 400202 (exists): treated as success, the token is issued.
    assert [r.url.path for r in sent] == ["/v3/users/bob/token", "/v3/users", "/v3/users/bob/token"]
    assert sendbird_emulator.is_session_token_alive("bob", token.value)


def test_uid_with_slash_is_refused_and_others_are_url_encoded() -> None:
    with pytest.raises(Exception) as info:
        SendbirdProvider.uid_rules.validate("a/b", "sendbird")
    assert getattr(info.value, "code", "") == "ERROR_INVALID_UID"
    p = SendbirdProvider("APP", "tok", base_url="http://sb.test/v3")
    flow = p.issue(ChatIdentity("a+b@c"), timedelta(hours=1))
    assert next(flow).url.raw_path == b"/v3/users/a%2Bb%40c/token"


def test_end_session_revokes_all_of_the_users_tokens(sendbird_emulator: SendbirdEmulator) -> None:
    chat = ChatAuth(provider(sendbird_emulator), MemoryStore())
    laptop = chat.get_session(ChatIdentity("alice"), "laptop").token
    phone = chat.get_session(ChatIdentity("alice"), "phone").token
    assert len(chat.end_session(ChatIdentity("alice"), "laptop")) == 2
    assert not sendbird_emulator.is_session_token_alive("alice", laptop.value)
    assert not sendbird_emulator.is_session_token_alive("alice", phone.value)
    assert sendbird_emulator.calls.count_of("DELETE", "/v3/users/alice/token") == 1
    assert chat.store.sessions(uid="alice") == []
    chat.close()


def test_bad_api_token_maps_to_400401(sendbird_emulator: SendbirdEmulator) -> None:
    chat = ChatAuth(provider(sendbird_emulator, "nope-nope"), MemoryStore())
    with pytest.raises(ProviderError) as info:
        chat.get_session(ChatIdentity("alice"), "s1")
    assert (info.value.status, info.value.code) == (401, "400401")
    assert "nope-nope" not in str(info.value)
    chat.close()


def test_settings() -> None:
    chat = from_settings(
        {
            "PROVIDER": "sendbird",
            "SENDBIRD_APPLICATION_ID": "ABC-123",
            "SENDBIRD_API_TOKEN": "master-token",
            "STORE": "memory://",
        }
    )
    p = chat.provider
    assert isinstance(p, SendbirdProvider)
    assert p.base_url == "https://api-ABC-123.sendbird.com/v3"
    assert p.client_config() == {"app_id": "ABC-123"}
    assert p.revocation == "user"
    with pytest.raises(ConfigurationError) as info:
        from_settings(
            {"PROVIDER": "sendbird", "SENDBIRD_APPLICATION_ID": "A", "STORE": "memory://"}
        )
    assert (info.value.code, info.value.setting) == (
        "ERROR_API_KEY_NOT_FOUND",
        "SENDBIRD_API_TOKEN",
    )
