"""CometChat specifics: UID rules (case folding), never-expiring tokens, race-safe
get-or-create, error-code mapping, the Calls variant, settings."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from chatauth import (
    ChatAuth,
    ChatIdentity,
    ConfigurationError,
    InvalidTokenError,
    InvalidUIDError,
    ProviderError,
    from_settings,
)
from chatauth.http import Flow, run_flow
from chatauth.providers.cometchat import CometChatCallsProvider, CometChatProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, DEFAULT_AUTH_KEY, CometChatEmulator


def provider(emulator: CometChatEmulator, key: str = DEFAULT_API_KEY) -> CometChatProvider:
    return CometChatProvider(
        emulator.app_id, key, region=emulator.region, base_url=emulator.base_url
    )


def drive(flow: Flow[Any], client: httpx.Client, between: dict[int, Callable[[], None]]) -> Any:
    """Run ``flow`` request by request; ``between[n]`` runs after the n-th response (1-based),
    standing in for another worker acting at that moment."""
    try:
        request = next(flow)
        n = 0
        while True:
            response = client.send(request)
            n += 1
            if n in between:
                between[n]()
            request = flow.send(response)
    except StopIteration as stop:
        return stop.value


@pytest.mark.parametrize(
    ("uid", "code"),
    [
        ("Alice", "ERROR_INVALID_UID"),  # CometChat would store "alice": refuse, never merge
        ("al ice", "ERROR_UID_WITH_SPACE"),
        ("", "ERROR_INVALID_UID"),
        ("a.b", "ERROR_INVALID_UID"),
        ("x" * 101, "ERROR_INVALID_UID"),
    ],
)
def test_uid_rules(cometchat_emulator: CometChatEmulator, uid: str, code: str) -> None:
    chat = ChatAuth(provider(cometchat_emulator), MemoryStore())
    with pytest.raises(InvalidUIDError) as info:
        chat.get_session(ChatIdentity(uid), "s1")
    assert info.value.code == code
    assert cometchat_emulator.calls == []
    assert CometChatProvider.uid_rules.validate("user_1-x" + "y" * 92, "cometchat")


def test_new_user_is_created_with_its_first_token(cometchat_emulator: CometChatEmulator) -> None:
    chat = ChatAuth(provider(cometchat_emulator), MemoryStore(), token_ttl=timedelta(hours=2))
    session = chat.get_session(ChatIdentity("alice", name="Alice", avatar="https://a/1.png"), "s1")
    assert cometchat_emulator.users["alice"]["name"] == "Alice"
    assert cometchat_emulator.users["alice"]["avatar"] == "https://a/1.png"
    assert cometchat_emulator.tokens_of("alice") == [session.token.value]
    assert [c.method + " " + c.path for c in cometchat_emulator.calls] == [
        "GET /v3/users/alice",
        "POST /v3/users",
    ]
    # Never expires at CometChat; chatauth still re-issues after token_ttl.
    assert session.token.expires_at is None
    assert session.token.refresh_at == session.token.issued_at + timedelta(hours=2)
    assert session.to_json()["expires_at"] is None
    assert session.client == {"app_id": cometchat_emulator.app_id, "region": "us"}
    chat.close()


def test_each_app_session_gets_its_own_token(cometchat_emulator: CometChatEmulator) -> None:
    chat = ChatAuth(provider(cometchat_emulator), MemoryStore())
    one = chat.get_session(ChatIdentity("alice"), "laptop").token
    two = chat.get_session(ChatIdentity("alice"), "phone").token
    chat.end_session(ChatIdentity("alice"), "laptop")
    # Only the laptop's token is deleted: revocation is per token.
    assert not cometchat_emulator.is_token_alive(one.value)
    assert cometchat_emulator.is_token_alive(two.value)
    assert [t.value for t in chat.store.sessions(uid="alice")] == [two.value]
    chat.close()


def test_user_created_by_another_worker_meanwhile(cometchat_emulator: CometChatEmulator) -> None:
    """GET says 404, another worker creates the user, our POST /users gets
    ERR_UID_ALREADY_EXISTS: that is success, and a token is created for the user."""
    p = provider(cometchat_emulator)
    with httpx.Client() as client:
        token = drive(
            p.issue(ChatIdentity("bob"), timedelta(hours=1)),
            client,
            {1: lambda: cometchat_emulator.create_user("bob")},
        )
    assert [c.method + " " + c.path for c in cometchat_emulator.calls] == [
        "GET /v3/users/bob",
        "POST /v3/users",
        "POST /v3/users/bob/auth_tokens",
    ]
    assert cometchat_emulator.is_token_alive(token.value)


def test_two_workers_racing_on_a_first_login(cometchat_emulator: CometChatEmulator) -> None:
    results: list[object] = []

    def worker() -> None:
        chat = ChatAuth(provider(cometchat_emulator), MemoryStore())
        try:
            results.append(chat.get_session(ChatIdentity("carol"), None).token)
        except Exception as exc:  # reported below
            results.append(exc)
        finally:
            chat.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.value for r in results}) == 4  # type: ignore[attr-defined]
    assert len(cometchat_emulator.tokens_of("carol")) == 4


@pytest.mark.parametrize(
    ("key", "status", "code"),
    [("wrong", 404, "AUTH_ERR_APIKEY_NOT_FOUND"), (DEFAULT_AUTH_KEY, 403, "AUTH_ERR_NO_ACCESS")],
)
def test_refusals_carry_cometchat_codes(
    cometchat_emulator: CometChatEmulator, key: str, status: int, code: str
) -> None:
    chat = ChatAuth(provider(cometchat_emulator, key), MemoryStore())
    with pytest.raises(ProviderError) as info:
        chat.get_session(ChatIdentity("alice"), "s1")
    assert (info.value.status, info.value.code) == (status, code)
    assert key not in str(info.value) + repr(info.value)
    chat.close()


def test_revoking_a_token_cometchat_no_longer_knows_is_fine(
    cometchat_emulator: CometChatEmulator,
) -> None:
    chat = ChatAuth(provider(cometchat_emulator), MemoryStore())
    token = chat.get_session(ChatIdentity("alice"), "s1").token
    httpx.delete(
        cometchat_emulator.client_url + "/me",
        headers={"appid": cometchat_emulator.app_id, "authToken": token.value},
    )
    assert chat.end_session(ChatIdentity("alice"), "s1") == [token]
    assert chat.store.count_pending() == 0
    chat.close()


def test_blank_or_spaced_token_from_the_server_is_refused() -> None:
    def answer(value: str) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.method == "GET":
                return httpx.Response(200, json={"data": {"uid": "alice"}})
            return httpx.Response(200, json={"data": {"uid": "alice", "authToken": value}})

        return httpx.MockTransport(handler)

    p = CometChatCallsProvider("app", "key", base_url="http://cc.test/v3")
    for value, code in (("", "ERROR_BLANK_AUTHTOKEN"), ("ab cd", "ERROR_AUTHTOKEN_WITH_SPACE")):
        with (
            httpx.Client(transport=answer(value)) as client,
            pytest.raises(InvalidTokenError) as info,
        ):
            run_flow(p.issue(ChatIdentity("alice"), timedelta(hours=1)), client, provider="x")
        assert info.value.code == code


def test_calls_variant(cometchat_emulator: CometChatEmulator) -> None:
    p = CometChatCallsProvider(
        cometchat_emulator.app_id,
        DEFAULT_API_KEY,
        region="eu",
        base_url=cometchat_emulator.base_url,
    )
    chat = ChatAuth(p, MemoryStore())
    session = chat.get_session(ChatIdentity("dora"), "s1")
    assert session.provider == "cometchat_calls"
    assert session.client == {"app_id": cometchat_emulator.app_id, "region": "eu", "sdk": "calls"}
    for uid, code in (("", "ERROR_INVALID_UID"), ("do ra", "ERROR_UID_WITH_SPACE")):
        with pytest.raises(InvalidUIDError) as uid_info:
            chat.get_session(ChatIdentity(uid), "s1")
        assert uid_info.value.code == code
    with pytest.raises(ConfigurationError) as key_info:
        from_settings(
            {"PROVIDER": "cometchat_calls", "COMETCHAT_APP_ID": "app", "STORE": "memory://"}
        )
    assert key_info.value.code == "ERROR_API_KEY_NOT_FOUND"
    chat.close()


def test_settings_default_host_and_secrets() -> None:
    chat = from_settings(
        {
            "PROVIDER": "cometchat",
            "COMETCHAT_APP_ID": "123abc",
            "COMETCHAT_REGION": "EU",
            "COMETCHAT_API_KEY": "rest-key-value",
            "STORE": "memory://",
        }
    )
    p = chat.provider
    assert isinstance(p, CometChatProvider)
    assert p.base_url == "https://123abc.api-eu.cometchat.io/v3"
    assert p.client_config() == {"app_id": "123abc", "region": "eu"}
    assert "rest-key-value" not in repr(p) + repr(chat)
    with pytest.raises(ConfigurationError) as info:
        from_settings({"PROVIDER": "cometchat", "COMETCHAT_API_KEY": "k", "STORE": "memory://"})
    assert (info.value.code, info.value.setting) == ("ERROR_CONFIG", "COMETCHAT_APP_ID")
    with pytest.raises(ConfigurationError) as info:
        from_settings(
            {
                "PROVIDER": "cometchat",
                "COMETCHAT_APP_ID": "a",
                "COMETCHAT_API_KEY": " ",
                "STORE": "memory://",
            }
        )
    assert (info.value.code, info.value.setting) == ("ERROR_API_KEY_NOT_FOUND", "COMETCHAT_API_KEY")


def test_check_proves_the_key(cometchat_emulator: CometChatEmulator) -> None:
    good = ChatAuth(provider(cometchat_emulator), MemoryStore())
    bad = ChatAuth(provider(cometchat_emulator, "bad"), MemoryStore())
    try:
        assert good.check()["app_id"] == cometchat_emulator.app_id
        with pytest.raises(ProviderError):
            bad.check()
    finally:
        good.close()
        bad.close()
