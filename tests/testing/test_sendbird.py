"""Sendbird emulator over real HTTP: users, session tokens, revoke-all, documented errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from chatauth.testing.sendbird import DEFAULT_API_TOKEN, SendbirdEmulator
from tests.testing import _loopback as loopback
from tests.testing._clock import T0, Clock

WEEK_MS = 7 * 24 * 3600 * 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(
    clock: Clock, serve_emulator: Callable[[SendbirdEmulator], SendbirdEmulator]
) -> SendbirdEmulator:
    return serve_emulator(SendbirdEmulator(clock=clock))


@pytest.fixture
def api(emulator: SendbirdEmulator) -> Iterator[httpx.Client]:
    with loopback.client(
        base_url=emulator.base_url,
        timeout=5,
        headers={"Api-Token": DEFAULT_API_TOKEN, "Content-Type": "application/json; charset=utf8"},
    ) as client:
        yield client


def sb_error(response: httpx.Response, status: int = 400) -> int:
    assert response.status_code == status
    body = response.json()
    assert body["error"] is True
    assert body["message"]
    return int(body["code"])


def create(api: httpx.Client, user_id: str, **extra: Any) -> httpx.Response:
    return api.post(
        "/users", json={"user_id": user_id, "nickname": user_id, "profile_url": "", **extra}
    )


def test_create_and_view_user(api: httpx.Client) -> None:
    response = create(api, "alice", issue_access_token=True, metadata={"team": "red"})
    assert response.status_code == 200
    user = response.json()
    assert user["user_id"] == "alice"
    assert user["nickname"] == "alice"
    assert user["profile_url"] == ""
    assert user["is_active"] is True
    assert user["is_online"] is False
    assert user["metadata"] == {"team": "red"}
    assert user["access_token"]
    assert api.get("/users/alice").json() == user
    assert create(api, "bob").json()["access_token"] == ""


def test_existing_user(api: httpx.Client) -> None:
    create(api, "carol")
    assert sb_error(create(api, "carol")) == 400202


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"nickname": "x", "profile_url": ""}, 400105),
        ({"user_id": "x", "profile_url": ""}, 400105),
        ({"user_id": "x", "nickname": "x"}, 400105),
        ({"user_id": "", "nickname": "x", "profile_url": ""}, 400105),
        ({"user_id": "u" * 81, "nickname": "x", "profile_url": ""}, 400110),
        ({"user_id": "x", "nickname": "n" * 81, "profile_url": ""}, 400110),
        ({"user_id": "x", "nickname": "x", "profile_url": "p" * 2049}, 400110),
        ({"user_id": "has space", "nickname": "x", "profile_url": ""}, 400151),
        ({"user_id": "tab\there", "nickname": "x", "profile_url": ""}, 400151),
    ],
)
def test_create_validation(api: httpx.Client, payload: dict[str, Any], code: int) -> None:
    assert sb_error(api.post("/users", json=payload)) == code


def test_limits_are_inclusive(api: httpx.Client) -> None:
    response = api.post(
        "/users", json={"user_id": "u" * 80, "nickname": "n" * 80, "profile_url": "p" * 2048}
    )
    assert response.status_code == 200


def test_session_tokens(api: httpx.Client, emulator: SendbirdEmulator, clock: Clock) -> None:
    create(api, "dan")
    default = api.post("/users/dan/token", json={})
    assert default.status_code == 200
    assert default.json()["expires_at"] == int(T0 * 1000) + WEEK_MS
    chosen = api.post("/users/dan/token", json={"expires_at": int(T0 * 1000) + 60_000})
    assert chosen.json()["expires_at"] == int(T0 * 1000) + 60_000
    assert emulator.is_session_token_alive("dan", default.json()["token"])
    assert emulator.is_session_token_alive("dan", chosen.json()["token"])
    assert not emulator.is_session_token_alive("someone-else", chosen.json()["token"])

    clock.now = T0 + 61
    assert not emulator.is_session_token_alive("dan", chosen.json()["token"])
    assert emulator.is_session_token_alive("dan", default.json()["token"])


def test_revoke_all_session_tokens(api: httpx.Client, emulator: SendbirdEmulator) -> None:
    access = create(api, "erin", issue_access_token=True).json()["access_token"]
    tokens = [api.post("/users/erin/token").json()["token"] for _ in range(3)]
    response = api.delete("/users/erin/token")
    assert response.status_code == 200
    assert response.json() == {}
    assert not any(emulator.is_session_token_alive("erin", t) for t in tokens)
    assert emulator.session_tokens_of("erin") == {}
    # The legacy access token is not a session token.
    assert emulator.is_access_token_alive("erin", access)
    fresh = api.post("/users/erin/token").json()["token"]
    assert emulator.is_session_token_alive("erin", fresh)


def test_token_errors(api: httpx.Client) -> None:
    assert sb_error(api.post("/users/nobody/token", json={})) == 400201
    assert sb_error(api.delete("/users/nobody/token")) == 400201
    create(api, "fay")
    assert sb_error(api.post("/users/fay/token", json={"expires_at": int(T0 * 1000) - 1})) == 400111
    assert sb_error(api.post("/users/fay/token", json={"expires_at": "soon"})) == 400111


def test_unknown_user(api: httpx.Client) -> None:
    assert sb_error(api.get("/users/nobody")) == 400201
    assert sb_error(api.delete("/users/nobody")) == 400201


def test_url_encoded_user_ids(api: httpx.Client, emulator: SendbirdEmulator) -> None:
    weird = "gus/é@example.com?#%"
    assert create(api, weird).status_code == 200
    path = quote(weird, safe="")
    assert api.get(f"/users/{path}").json()["user_id"] == weird
    token = api.post(f"/users/{path}/token").json()["token"]
    assert emulator.is_session_token_alive(weird, token)
    assert api.delete(f"/users/{path}/token").json() == {}
    assert not emulator.is_session_token_alive(weird, token)


def test_delete_user(api: httpx.Client, emulator: SendbirdEmulator) -> None:
    create(api, "hal")
    token = api.post("/users/hal/token").json()["token"]
    assert api.delete("/users/hal").json() == {}
    assert not emulator.is_session_token_alive("hal", token)


@pytest.mark.parametrize("token", [None, "wrong"])
def test_api_token_check(emulator: SendbirdEmulator, token: str | None) -> None:
    headers = {"Api-Token": token} if token else {}
    response = loopback.get(emulator.base_url + "/users/x", headers=headers)
    assert sb_error(response, 401) == 400401


def test_secondary_api_token(
    serve_emulator: Callable[[SendbirdEmulator], SendbirdEmulator],
) -> None:
    emulator = serve_emulator(SendbirdEmulator(secondary_tokens=("secondary-token",)))
    response = loopback.post(
        emulator.base_url + "/users",
        headers={"Api-Token": "secondary-token"},
        json={"user_id": "ivy", "nickname": "Ivy", "profile_url": ""},
    )
    assert response.status_code == 200
