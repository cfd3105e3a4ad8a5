"""ChatKitty specifics: the signed ``authParams``, the verify URL's answers (sync and async,
over real HTTP through the emulator's chat function), the user upkeep with a cached OAuth2
bearer token, settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatauth import ChatAuth, ChatIdentity, ConfigurationError, ProviderError, from_settings
from chatauth.http import run_flow
from chatauth.providers.chatkitty import (
    SALT,
    ChatKittyProvider,
    averify_auth_params,
    verify_auth_params,
)
from chatauth.stores.memory import MemoryStore
from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from chatauth.testing.server import serve

SIGNING_KEY = "chatkitty-signing-key-for-tests"


def provider(emulator: ChatKittyEmulator, secret: str = DEFAULT_CLIENT_SECRET) -> ChatKittyProvider:
    assert emulator.url is not None
    return ChatKittyProvider(
        DEFAULT_API_KEY,
        DEFAULT_CLIENT_ID,
        secret,
        signing_key=SIGNING_KEY,
        base_url=emulator.base_url,
        auth_url=emulator.url + "/oauth/token",
    )


@pytest.fixture
def chat(chatkitty_emulator: ChatKittyEmulator) -> Iterator[ChatAuth]:
    service = ChatAuth(
        provider(chatkitty_emulator), MemoryStore(), token_ttl=600, refresh_margin=60
    )
    yield service
    service.close()


@pytest.fixture
def verify_url(chat: ChatAuth) -> Iterator[str]:
    """The app's verify URL, served over real HTTP with the async verifier."""

    async def verify(request: Request) -> JSONResponse:
        status, body, headers = await averify_auth_params(chat, await request.json())
        return JSONResponse(body, status_code=status, headers=headers)

    with serve(
        Starlette(routes=[Route("/chat/chatkitty/verify", verify, methods=["POST"])])
    ) as app:
        yield app.url + "/chat/chatkitty/verify"


def test_session_starts_until_the_app_session_ends(
    chat: ChatAuth, chatkitty_emulator: ChatKittyEmulator, verify_url: str
) -> None:
    session = chat.get_session(ChatIdentity("alice", name="Alice"), "s1")
    assert session.client == {"api_key": DEFAULT_API_KEY}
    assert chatkitty_emulator.users["alice"]["displayName"] == "Alice"
    params = {"token": session.token.value}
    assert chatkitty_emulator.start_session("alice", params, verify_url)
    chat.end_session(ChatIdentity("alice"), "s1")
    assert not chatkitty_emulator.start_session("alice", params, verify_url)
    assert chatkitty_emulator.session_attempts[-1].status == 403
    # Already-started ChatKitty sessions are not cut (ChatKitty has no such API).
    assert [s["state"] for s in chatkitty_emulator.sessions] == ["ACTIVE"]


def test_verify_answers(chat: ChatAuth) -> None:
    token = chat.get_session(ChatIdentity("alice"), "s1").token
    status, body, headers = verify_auth_params(
        chat, {"username": "alice", "authParams": {"token": token.value}}
    )
    assert (status, body) == (200, {"allow": True, "username": "alice"})
    assert headers["Cache-Control"] == "no-store"

    def code(payload: object) -> tuple[int, str]:
        status, body, _ = verify_auth_params(chat, payload)  # type: ignore[arg-type]
        return status, body["error"]["code"]

    assert code({"username": "mallory", "authParams": {"token": token.value}}) == (
        403,
        "ERROR_AUTH_PARAMS_USERNAME",
    )
    assert code({"username": "alice", "authParams": {"token": token.value[:-2] + "xx"}}) == (
        403,
        "ERROR_AUTH_PARAMS_INVALID",
    )
    assert code({"username": "alice"}) == (403, "ERROR_AUTH_PARAMS_INVALID")
    assert code({"username": "alice", "authParams": "not-signed"}) == (
        403,
        "ERROR_AUTH_PARAMS_INVALID",
    )
    # Well signed for alice but never issued by this app's store (or already replaced).
    other = chat.provider.sign_auth_params("alice")  # type: ignore[attr-defined]
    assert code({"username": "alice", "authParams": {"token": other}}) == (
        403,
        "ERROR_SESSION_ENDED",
    )


def test_params_older_than_token_ttl_are_refused(chat: ChatAuth) -> None:
    class TwoHoursAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 7200

    old = URLSafeTimedSerializer(SIGNING_KEY, salt=SALT, signer=TwoHoursAgo).dumps(
        {"uid": "alice", "nonce": "n"}
    )
    status, body, _ = verify_auth_params(chat, {"username": "alice", "authParams": {"token": old}})
    assert (status, body["error"]["code"]) == (403, "ERROR_AUTH_PARAMS_EXPIRED")


async def test_async_verify_after_end_session(chat: ChatAuth) -> None:
    token = (await chat.aget_session(ChatIdentity("bob"), "a1")).token
    payload = {"username": "bob", "authParams": {"token": token.value}}
    assert (await averify_auth_params(chat, payload))[0] == 200
    await chat.aend_session(ChatIdentity("bob"), "a1")
    status, body, _ = await averify_auth_params(chat, payload)
    assert (status, body["error"]["code"]) == (403, "ERROR_SESSION_ENDED")
    await chat.aclose()


def test_params_name_the_uid_and_a_nonce_only(chat: ChatAuth) -> None:
    token = chat.get_session(ChatIdentity("alice"), "secret-app-session-id").token
    data = URLSafeTimedSerializer(SIGNING_KEY, salt=SALT).loads(token.value)
    assert set(data) == {"uid", "nonce"} and data["uid"] == "alice"
    assert "secret-app-session-id" not in token.value
    assert token.expires_at == token.issued_at + timedelta(seconds=600)
    # Another purpose's signature with the same key is not accepted (salted per purpose).
    foreign = URLSafeTimedSerializer(SIGNING_KEY, salt="other").dumps({"uid": "alice"})
    assert (
        verify_auth_params(chat, {"username": "alice", "authParams": {"token": foreign}})[0] == 403
    )


def test_bearer_token_is_cached_and_renewed_on_401(
    chat: ChatAuth, chatkitty_emulator: ChatKittyEmulator
) -> None:
    chat.get_session(ChatIdentity("alice"), "s1")
    chat.get_session(ChatIdentity("bob"), "s1")
    assert chatkitty_emulator.access_tokens_issued == 1
    chatkitty_emulator.expire_access_tokens()  # ChatKitty drops it before expires_in
    chat.get_session(ChatIdentity("carol"), "s1")
    assert chatkitty_emulator.access_tokens_issued == 2
    assert "carol" in chatkitty_emulator.users


def test_user_created_by_another_worker_meanwhile(chatkitty_emulator: ChatKittyEmulator) -> None:
    p = provider(chatkitty_emulator)
    flow = p.issue(ChatIdentity("dave"), timedelta(hours=1))
    with httpx.Client() as client:
        request = next(flow)  # oauth token
        request = flow.send(client.send(request))  # HEAD -> 404
        assert request.method == "HEAD"
        request = flow.send(client.send(request))  # POST /v1/users
        assert request.method == "POST"
        chatkitty_emulator.create_user("dave")  # the other worker wins
        request = flow.send(client.send(request))  # duplicate -> HEAD again
        assert request.method == "HEAD"
        with pytest.raises(StopIteration) as stop:
            flow.send(client.send(request))
    assert stop.value.value.uid == "dave"


def test_bad_client_secret(chatkitty_emulator: ChatKittyEmulator) -> None:
    with httpx.Client() as client, pytest.raises(ProviderError) as info:
        run_flow(
            provider(chatkitty_emulator, "wrong").issue(ChatIdentity("a"), timedelta(hours=1)),
            client,
            provider="chatkitty",
        )
    assert (info.value.status, info.value.code) == (401, "invalid_client")


def test_settings() -> None:
    base = {
        "PROVIDER": "chatkitty",
        "CHATKITTY_API_KEY": "pub",
        "CHATKITTY_CLIENT_ID": "id",
        "CHATKITTY_CLIENT_SECRET": "client-secret",
        "STORE": "memory://",
    }
    chat = from_settings(base)
    p = chat.provider
    assert isinstance(p, ChatKittyProvider)
    assert p.revocation == "none"
    assert (p.base_url, p.auth_url) == (
        "https://api.chatkitty.com",
        "https://authorization.chatkitty.com/oauth/token",
    )
    assert "client-secret" not in repr(p)
    # Without a signing key, params are not signed with the client secret itself.
    value = p.sign_auth_params("alice")
    with pytest.raises(BadSignature):
        URLSafeTimedSerializer("client-secret", salt=SALT).loads(value)
    with pytest.raises(ConfigurationError) as info:
        from_settings({**base, "CHATKITTY_CLIENT_SECRET": ""})
    assert (info.value.code, info.value.setting) == (
        "ERROR_API_KEY_NOT_FOUND",
        "CHATKITTY_CLIENT_SECRET",
    )
    with pytest.raises(ConfigurationError):
        verify_auth_params(
            from_settings({"PROVIDER": "jwt", "JWT_SECRET": "x" * 32, "STORE": "memory://"}), {}
        )
