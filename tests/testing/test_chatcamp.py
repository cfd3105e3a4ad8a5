"""ChatCamp emulator over real HTTP: the API 2.0 users.* calls as the vendor's plugin makes
them, token binding and rotation, and ``connect``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from chatauth.testing.chatcamp import DEFAULT_API_KEY, ChatCampEmulator
from tests.testing import _loopback as loopback

Call = Callable[..., httpx.Response]


@pytest.fixture
def call(chatcamp_emulator: ChatCampEmulator) -> Iterator[Call]:
    with loopback.client(
        base_url=chatcamp_emulator.base_url, timeout=5, headers={"x-api-key": DEFAULT_API_KEY}
    ) as c:

        def do(method: str, **params: object) -> httpx.Response:
            return c.post(f"/{method}", json=params)

        yield do


def error_code(response: httpx.Response, status: int) -> str:
    assert response.status_code == status
    return str(response.json()["error"]["code"])


def test_get_unknown_user_is_404_then_create_binds_the_callers_token(
    call: Call, chatcamp_emulator: ChatCampEmulator
) -> None:
    assert call("users.get", id="alice").status_code == 404
    created = call(
        "users.create",
        id="alice",
        display_name="Alice",
        avatar_url="https://example.com/a.png",
        check_access_token=True,
        access_token="token-chosen-by-the-caller",
    )
    assert created.status_code == 200
    body = created.json()
    assert body["access_token"] == "token-chosen-by-the-caller"  # top level, as the plugin reads
    assert body["user"]["display_name"] == "Alice"
    assert body["user"]["avatar_url"] == "https://example.com/a.png"
    assert "access_token" not in body["user"]
    fetched = call("users.get", id="alice").json()
    assert fetched["access_token"] == "token-chosen-by-the-caller"
    assert chatcamp_emulator.connect("alice", "token-chosen-by-the-caller") is True
    assert chatcamp_emulator.connect("alice", "guess") is False
    assert chatcamp_emulator.connect("alice") is False
    assert chatcamp_emulator.connections == ["alice"]


def test_create_without_a_token_and_generated_tokens(
    call: Call, chatcamp_emulator: ChatCampEmulator
) -> None:
    assert call("users.create", id="bob", display_name="Bob").json()["access_token"] is None
    assert chatcamp_emulator.connect("bob") is True
    generated = call("users.update", id="bob", check_access_token=True).json()["access_token"]
    assert isinstance(generated, str) and len(generated) == 43
    assert chatcamp_emulator.connect("bob", generated) is True


def test_update_replaces_the_one_token(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    call("users.create", id="erin", display_name="E", check_access_token=True, access_token="one")
    body = call("users.update", id="erin", display_name="Erin", access_token="two").json()
    assert (body["access_token"], body["user"]["display_name"]) == ("two", "Erin")
    assert chatcamp_emulator.connect("erin", "one") is False
    assert chatcamp_emulator.connect("erin", "two") is True
    call("users.update", id="erin", access_token=None)  # null removes the token
    assert chatcamp_emulator.connect("erin") is True


def test_refusals(call: Call) -> None:
    call("users.create", id="carol", display_name="C")
    assert error_code(call("users.create", id="carol", display_name="C"), 409) == (
        "user_already_exists"
    )
    assert error_code(call("users.create", display_name="C"), 400) == "invalid_id"
    assert error_code(call("users.create", id="with space", display_name="C"), 400) == (
        "invalid_id"
    )
    assert error_code(call("users.create", id="x" * 256, display_name="C"), 400) == "invalid_id"
    assert error_code(call("users.create", id="dave"), 400) == "missing_parameter"
    assert error_code(call("users.update", id="nobody"), 404) == "user_not_found"
    assert error_code(call("users.update", id="carol", access_token=" "), 400) == (
        "invalid_request"
    )


def test_delete(call: Call, chatcamp_emulator: ChatCampEmulator) -> None:
    call("users.create", id="gus", display_name="G", check_access_token=True, access_token="t")
    assert call("users.delete", id="gus").status_code == 200
    assert chatcamp_emulator.connect("gus", "t") is False
    assert error_code(call("users.get", id="gus"), 404) == "user_not_found"
    assert error_code(call("users.delete", id="gus"), 404) == "user_not_found"


def test_connect_unknown_uid(chatcamp_emulator: ChatCampEmulator) -> None:
    assert chatcamp_emulator.connect("stranger", "some-token") is False
    assert "stranger" not in chatcamp_emulator.users
    # Without a token the client auto-creates the user (documented client behaviour).
    assert chatcamp_emulator.connect("stranger") is True
    assert "stranger" in chatcamp_emulator.users


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"x-app-id": "chatcamp"}])
def test_only_the_api_key_authenticates(
    chatcamp_emulator: ChatCampEmulator, headers: dict[str, str]
) -> None:
    response = loopback.post(
        chatcamp_emulator.base_url + "/users.get", json={"id": "a"}, headers=headers
    )
    assert error_code(response, 401) == "invalid_auth"


def test_unknown_method_verb_and_body(chatcamp_emulator: ChatCampEmulator) -> None:
    headers = {"x-api-key": DEFAULT_API_KEY}
    unknown = loopback.post(chatcamp_emulator.base_url + "/users.explode", json={}, headers=headers)
    assert error_code(unknown, 404) == "unknown_method"
    wrong_verb = loopback.get(chatcamp_emulator.base_url + "/users.get", headers=headers)
    assert error_code(wrong_verb, 405) == "method_not_allowed"
    bad_body = loopback.post(
        chatcamp_emulator.base_url + "/users.get", content=b"[1, 2]", headers=headers
    )
    assert error_code(bad_body, 400) == "invalid_request"
