"""ChatCamp emulator over real HTTP: users.* methods, token rotation, and ``connect``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chatauth.testing.chatcamp import DEFAULT_API_KEY, DEFAULT_APP_ID, ChatCampEmulator
from tests.testing import _loopback as loopback

Call = Callable[..., dict[str, Any]]


@pytest.fixture
def call(chatcamp_emulator: ChatCampEmulator) -> Iterator[Call]:
    with loopback.client(
        base_url=chatcamp_emulator.base_url,
        timeout=5,
        headers={"x-app-id": DEFAULT_APP_ID, "x-api-key": DEFAULT_API_KEY},
    ) as c:

        def do(method: str, **params: Any) -> dict[str, Any]:
            response = c.post(f"/{method}", json=params)
            assert response.status_code == 200
            body: dict[str, Any] = response.json()
            return body

        yield do


def error_code(body: dict[str, Any]) -> str:
    assert body["ok"] is False
    assert body["error"]["message"]
    return str(body["error"]["code"])


def test_create_with_access_token(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    body = call(
        "users.create",
        id="alice",
        display_name="Alice",
        avatar_url="https://example.com/a.png",
        email="a@example.com",
        check_access_token=True,
    )
    assert body["ok"] is True
    user = body["user"]
    assert user["id"] == "alice"
    assert user["display_name"] == "Alice"
    assert user["avatar_url"] == "https://example.com/a.png"
    assert user["email"] == "a@example.com"
    token = user["access_token"]
    assert token
    assert chatcamp_emulator.token_of("alice") == token
    assert chatcamp_emulator.connect("alice", token) is True
    assert chatcamp_emulator.connect("alice", "guess") is False
    assert chatcamp_emulator.connect("alice") is False
    assert chatcamp_emulator.connections == ["alice"]


def test_create_without_access_token(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    user = call("users.create", id="bob", display_name="Bob")["user"]
    assert "access_token" not in user
    assert user["has_access_token"] is False
    assert chatcamp_emulator.connect("bob") is True
    assert chatcamp_emulator.connect("bob", "anything") is False


def test_duplicate_and_invalid_ids(call: Call) -> None:
    call("users.create", id="carol", display_name="C")
    assert error_code(call("users.create", id="carol", display_name="C")) == "user_already_exists"
    assert error_code(call("users.create", display_name="C")) == "missing_parameter"
    assert error_code(call("users.create", id="with space", display_name="C")) == "invalid_id"
    assert error_code(call("users.create", id="x" * 256, display_name="C")) == "invalid_id"
    assert error_code(call("users.create", id="dave")) == "missing_parameter"


def test_update_rotates_the_token(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    old = call("users.create", id="erin", display_name="E", check_access_token=True)["user"][
        "access_token"
    ]
    # A chosen value...
    body = call("users.update", id="erin", access_token="rotated-value")
    assert body["user"]["access_token"] == "rotated-value"
    assert chatcamp_emulator.connect("erin", old) is False
    assert chatcamp_emulator.connect("erin", "rotated-value") is True
    # ...or a generated one.
    generated = call("users.update", id="erin", check_access_token=True)["user"]["access_token"]
    assert generated not in (old, "rotated-value")
    assert chatcamp_emulator.connect("erin", "rotated-value") is False
    assert chatcamp_emulator.connect("erin", generated) is True
    # null removes the token.
    call("users.update", id="erin", access_token=None)
    assert chatcamp_emulator.connect("erin") is True


def test_update_fields_and_errors(call: Call) -> None:
    call("users.create", id="fay", display_name="F")
    assert call("users.update", id="fay", display_name="Fay")["user"]["display_name"] == "Fay"
    assert error_code(call("users.update", id="nobody")) == "user_not_found"
    assert error_code(call("users.update", id="fay", access_token="")) == "invalid_request"


def test_get_list_delete(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    token = call("users.create", id="gus", display_name="G", check_access_token=True)["user"][
        "access_token"
    ]
    call("users.create", id="hal", display_name="H")
    fetched = call("users.get", id="gus")["user"]
    assert fetched["id"] == "gus"
    assert "access_token" not in fetched
    assert fetched["has_access_token"] is True
    assert [u["id"] for u in call("users.list")["users"]] == ["gus", "hal"]
    assert [u["id"] for u in call("users.list", limit=1, offset=1)["users"]] == ["hal"]
    assert call("users.delete", id="gus") == {"ok": True}
    assert chatcamp_emulator.connect("gus", token) is False
    assert error_code(call("users.get", id="gus")) == "user_not_found"
    assert error_code(call("users.delete", id="gus")) == "user_not_found"


def test_connect_unknown_uid(chatcamp_emulator: ChatCampEmulator) -> None:
    assert chatcamp_emulator.connect("stranger", "some-token") is False
    assert "stranger" not in chatcamp_emulator.users
    # Without a token the client auto-creates the user (documented client behaviour).
    assert chatcamp_emulator.connect("stranger") is True
    assert "stranger" in chatcamp_emulator.users


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-app-id": DEFAULT_APP_ID},
        {"x-app-id": "other", "x-api-key": DEFAULT_API_KEY},
        {"x-app-id": DEFAULT_APP_ID, "x-api-key": "wrong"},
    ],
)
def test_auth_headers(chatcamp_emulator: ChatCampEmulator, headers: dict[str, str]) -> None:
    response = loopback.post(chatcamp_emulator.base_url + "/users.list", json={}, headers=headers)
    assert response.status_code == 200
    assert error_code(response.json()) == "invalid_auth"


def test_unknown_method_verb_and_body(chatcamp_emulator: ChatCampEmulator) -> None:
    headers = {"x-app-id": DEFAULT_APP_ID, "x-api-key": DEFAULT_API_KEY}
    unknown = loopback.post(chatcamp_emulator.base_url + "/users.explode", json={}, headers=headers)
    assert unknown.status_code == 404
    assert error_code(unknown.json()) == "unknown_method"
    wrong_verb = loopback.get(chatcamp_emulator.base_url + "/users.list", headers=headers)
    assert wrong_verb.status_code == 405
    bad_body = loopback.post(
        chatcamp_emulator.base_url + "/users.list", content=b"[1, 2]", headers=headers
    )
    assert error_code(bad_body.json()) == "invalid_request"
