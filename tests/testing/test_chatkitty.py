"""ChatKitty emulator over real HTTP: OAuth2, Platform API users, and the session check."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatauth.testing.chatkitty import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from chatauth.testing.server import serve
from tests.testing import _loopback as loopback


def get_token(emulator: ChatKittyEmulator) -> str:
    response = loopback.post(
        emulator.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
    )
    assert response.status_code == 200
    return str(response.json()["access_token"])


@pytest.fixture
def api(chatkitty_emulator: ChatKittyEmulator) -> Iterator[httpx.Client]:
    token = get_token(chatkitty_emulator)
    with loopback.client(
        base_url=chatkitty_emulator.base_url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ) as client:
        yield client


def api_error(response: httpx.Response) -> str:
    body = response.json()
    assert body["message"]
    assert body["timestamp"].endswith("Z")
    return str(body["error"])


def test_client_credentials_token(chatkitty_emulator: ChatKittyEmulator) -> None:
    response = loopback.post(
        chatkitty_emulator.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert chatkitty_emulator.access_tokens_issued == 1


@pytest.mark.parametrize(
    "auth", [None, ("wrong", DEFAULT_CLIENT_SECRET), (DEFAULT_CLIENT_ID, "wrong")]
)
def test_token_endpoint_refuses_bad_client(
    chatkitty_emulator: ChatKittyEmulator, auth: tuple[str, str] | None
) -> None:
    response = loopback.post(
        chatkitty_emulator.url + "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=auth,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.json()["error_description"]


def test_token_endpoint_refuses_other_grants(chatkitty_emulator: ChatKittyEmulator) -> None:
    response = loopback.post(
        chatkitty_emulator.url + "/oauth/token",
        data={"grant_type": "password"},
        auth=(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_create_check_get_delete_user(api: httpx.Client) -> None:
    created = api.post(
        "/v1/users",
        json={
            "name": "alice@example.com",
            "displayName": "Alice",
            "isGuest": False,
            "properties": {"app_user": 42},
        },
    )
    assert created.status_code == 200
    user = created.json()
    assert isinstance(user["id"], int)
    assert user["name"] == "alice@example.com"
    assert user["displayName"] == "Alice"
    assert user["type"] == "PERSON"
    assert user["isGuest"] is False
    assert user["properties"] == {"app_user": 42}
    assert user["presence"] == {"status": "UNAVAILABLE", "online": False}
    assert user["_links"]["self"]["href"].endswith(f"/v1/users/{user['id']}")

    assert api.head("/v1/users", params={"name": "alice@example.com"}).status_code == 200
    assert api.head("/v1/users", params={"name": "nobody"}).status_code == 404

    listed = api.get("/v1/users", params={"name": "alice@example.com"}).json()
    assert [u["id"] for u in listed["_embedded"]["users"]] == [user["id"]]
    assert listed["page"]["totalElements"] == 1

    fetched = api.get(f"/v1/users/{user['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == user

    patched = api.patch(f"/v1/users/{user['id']}", json={"displayName": "Alice A."})
    assert patched.json()["displayName"] == "Alice A."

    deleted = api.delete(f"/v1/users/{user['id']}")
    assert deleted.status_code == 200
    assert "key" in deleted.json()
    missing = api.get(f"/v1/users/{user['id']}")
    assert missing.status_code == 404
    assert api_error(missing) == "ResourceNotFoundError"


def test_empty_page_has_no_embedded(api: httpx.Client) -> None:
    body = api.get("/v1/users", params={"name": "nobody"}).json()
    assert "_embedded" not in body
    assert body["page"]["totalElements"] == 0


def test_duplicate_username_is_client_error(api: httpx.Client) -> None:
    payload = {"name": "bob", "displayName": "Bob"}
    assert api.post("/v1/users", json=payload).status_code == 200
    response = api.post("/v1/users", json=payload)
    assert response.status_code == 400
    assert api_error(response) == "ClientError"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"name": "x"},
        {"displayName": "X"},
        {"name": " ", "displayName": "X"},
        {"name": "x", "displayName": "X", "isGuest": "no"},
    ],
)
def test_invalid_user_payload(api: httpx.Client, payload: dict[str, Any]) -> None:
    response = api.post("/v1/users", json=payload)
    assert response.status_code == 400
    assert api_error(response) == "ClientError"


def test_unknown_and_malformed_user_ids(api: httpx.Client) -> None:
    assert api_error(api.get("/v1/users/999")) == "ResourceNotFoundError"
    response = api.get("/v1/users/not-a-number")
    assert response.status_code == 400
    assert api_error(response) == "ClientError"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer not-a-token", "Basic abc"])
def test_bearer_check(chatkitty_emulator: ChatKittyEmulator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = loopback.get(chatkitty_emulator.base_url + "/v1/users", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert response.json()["error_description"]


def test_expired_bearer_token(chatkitty_emulator: ChatKittyEmulator, api: httpx.Client) -> None:
    assert api.get("/v1/users").status_code == 200
    chatkitty_emulator.expire_access_tokens()
    response = api.get("/v1/users")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"


def test_access_token_expires_with_the_clock() -> None:
    now = [1_000_000.0]
    emulator = ChatKittyEmulator(token_ttl=60, clock=lambda: now[0])
    with emulator.serve():
        token = get_token(emulator)
        headers = {"Authorization": f"Bearer {token}"}
        assert loopback.get(emulator.base_url + "/v1/users", headers=headers).status_code == 200
        now[0] += 61
        assert loopback.get(emulator.base_url + "/v1/users", headers=headers).status_code == 401


# -- the chat function's session check --------------------------------------------------


class Verifier:
    """A stand-in for the app's verify endpoint: accepts the params it was told are live."""

    def __init__(self) -> None:
        self.live: set[str] = set()
        self.seen: list[dict[str, Any]] = []

        async def verify(request: Request) -> JSONResponse:
            body = await request.json()
            self.seen.append(body)
            if body.get("authParams", {}).get("signed") in self.live:
                return JSONResponse({"valid": True})
            return JSONResponse({"valid": False}, status_code=403)

        self.app = Starlette(routes=[Route("/chat/chatkitty/verify", verify, methods=["POST"])])


@pytest.fixture
def verifier() -> Iterator[tuple[Verifier, str]]:
    v = Verifier()
    with serve(v.app) as served:
        yield v, served.url + "/chat/chatkitty/verify"


def test_start_session_follows_the_verify_endpoint(
    chatkitty_emulator: ChatKittyEmulator, verifier: tuple[Verifier, str]
) -> None:
    v, url = verifier
    chatkitty_emulator.create_user("carol")
    v.live.add("params-1")
    assert chatkitty_emulator.start_session("carol", {"signed": "params-1"}, url) is True
    assert v.seen[-1] == {"username": "carol", "authParams": {"signed": "params-1"}}
    assert [s["state"] for s in chatkitty_emulator.sessions] == ["ACTIVE"]

    # The app ends its session: the same params are refused from now on.
    v.live.discard("params-1")
    assert chatkitty_emulator.start_session("carol", {"signed": "params-1"}, url) is False
    attempt = chatkitty_emulator.session_attempts[-1]
    assert (attempt.allowed, attempt.status) == (False, 403)
    assert len(chatkitty_emulator.sessions) == 1


def test_start_session_for_unknown_user(
    chatkitty_emulator: ChatKittyEmulator, verifier: tuple[Verifier, str]
) -> None:
    v, url = verifier
    v.live.add("p")
    assert chatkitty_emulator.start_session("ghost", {"signed": "p"}, url) is False
    assert chatkitty_emulator.session_attempts[-1].reason == "no such user"


def test_start_session_can_create_users_when_configured(verifier: tuple[Verifier, str]) -> None:
    v, url = verifier
    v.live.add("p")
    emulator = ChatKittyEmulator(create_unknown_users=True)
    assert emulator.start_session("newbie", {"signed": "p"}, url) is True
    assert "newbie" in emulator.users


def test_start_session_with_unreachable_verify_url(chatkitty_emulator: ChatKittyEmulator) -> None:
    chatkitty_emulator.create_user("dan")
    # The emulator's own server has no such route: 404 -> refused.
    url = chatkitty_emulator.url + "/nowhere"
    assert chatkitty_emulator.start_session("dan", {}, url) is False
    # Nothing listens on port 9 (discard) on loopback here: connection refused -> refused.
    assert chatkitty_emulator.start_session("dan", {}, "http://127.0.0.1:9/", timeout=1) is False
    assert chatkitty_emulator.session_attempts[-1].status is None


def test_user_sessions_listing(
    api: httpx.Client, chatkitty_emulator: ChatKittyEmulator, verifier: tuple[Verifier, str]
) -> None:
    v, url = verifier
    v.live.add("p")
    user = chatkitty_emulator.create_user("erin")
    chatkitty_emulator.start_session("erin", {"signed": "p"}, url)
    active = api.get("/v1/user-sessions", params={"state": "ACTIVE"}).json()
    assert [s["user"]["name"] for s in active["_embedded"]["sessions"]] == ["erin"]
    api.delete(f"/v1/users/{user['id']}")
    ended = api.get("/v1/user-sessions", params={"state": "ENDED"}).json()
    assert len(ended["_embedded"]["sessions"]) == 1
    assert api.get("/v1/user-sessions", params={"state": "BOGUS"}).status_code == 400
