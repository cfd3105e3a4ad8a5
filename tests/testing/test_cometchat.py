"""CometChat emulator over real HTTP: the documented happy paths and every documented error."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from chatauth.testing.cometchat import (
    DEFAULT_API_KEY,
    DEFAULT_APP_ID,
    DEFAULT_AUTH_KEY,
    CometChatEmulator,
)
from tests.testing import _loopback as loopback

# These tests are CometChat's REST clients, not chatauth: their DELETE .../auth_tokens/{token}
# puts the token in a URL, as CometChat's API does, and httpx logs every URL at INFO
# (chatauth's own calls scrub it: tests/core/test_log_redaction.py).
pytestmark = pytest.mark.canary_allows_tokens("the tests call the emulator's API directly")

JSON = {"Accept": "application/json", "Content-Type": "application/json"}


@pytest.fixture
def rest(cometchat_emulator: CometChatEmulator) -> Iterator[httpx.Client]:
    with loopback.client(
        base_url=cometchat_emulator.base_url, headers={**JSON, "apikey": DEFAULT_API_KEY}, timeout=5
    ) as client:
        yield client


@pytest.fixture
def client_api(cometchat_emulator: CometChatEmulator) -> Iterator[httpx.Client]:
    with loopback.client(
        base_url=cometchat_emulator.client_url, headers={"appid": DEFAULT_APP_ID}, timeout=5
    ) as client:
        yield client


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert body["error"]["source"] == "chat-api"
    assert body["error"]["message"]
    assert body["error"]["devMessage"]
    return str(body["error"]["code"])


def test_create_user_with_auth_token(
    rest: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    response = rest.post(
        "/users",
        json={
            "uid": "Alice-1",
            "name": "Alice",
            "avatar": "https://example.com/a.png",
            "withAuthToken": True,
        },
    )
    assert response.status_code == 200
    user = response.json()["data"]
    # stored lower-cased
    assert user["uid"] == "alice-1"
    assert user["name"] == "Alice"
    assert user["avatar"] == "https://example.com/a.png"
    assert user["status"] == "offline"
    assert user["role"] == "default"
    assert isinstance(user["createdAt"], int)
    assert user["authToken"].startswith("alice-1_")
    assert cometchat_emulator.tokens_of("alice-1") == [user["authToken"]]
    assert cometchat_emulator.is_token_alive(user["authToken"])


def test_create_user_without_token_flag_returns_no_token(
    rest: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    user = rest.post("/users", json={"uid": "bob", "name": "Bob"}).json()["data"]
    assert "authToken" not in user
    assert cometchat_emulator.tokens_of("bob") == []


def test_get_user_and_lowercase_lookup(rest: httpx.Client) -> None:
    rest.post("/users", json={"uid": "Carol", "name": "Carol"})
    for uid in ("carol", "Carol", "CAROL"):
        response = rest.get(f"/users/{uid}")
        assert response.status_code == 200
        assert response.json()["data"]["uid"] == "carol"


def test_unknown_user_is_404(rest: httpx.Client) -> None:
    response = rest.get("/users/nobody")
    assert response.status_code == 404
    assert error_code(response) == "ERR_UID_NOT_FOUND"
    response = rest.post("/users/nobody/auth_tokens", json={})
    assert response.status_code == 404
    assert error_code(response) == "ERR_UID_NOT_FOUND"


def test_duplicate_uid_case_insensitively(rest: httpx.Client) -> None:
    assert rest.post("/users", json={"uid": "dave", "name": "D"}).status_code == 200
    response = rest.post("/users", json={"uid": "DAVE", "name": "D"})
    assert response.status_code == 400
    assert error_code(response) == "ERR_UID_ALREADY_EXISTS"


@pytest.mark.parametrize("uid", ["has space", "dot.ted", "a" * 101, "ünï", "slash/ed"])
def test_invalid_uid(rest: httpx.Client, uid: str) -> None:
    response = rest.post("/users", json={"uid": uid, "name": "X"})
    assert response.status_code == 400
    assert error_code(response) == "ERR_INVALID_UID"


def test_uid_of_100_characters_is_accepted(rest: httpx.Client) -> None:
    assert rest.post("/users", json={"uid": "a" * 100, "name": "X"}).status_code == 200


def test_missing_fields_are_bad_request_with_details(rest: httpx.Client) -> None:
    response = rest.post("/users", json={})
    assert response.status_code == 400
    assert error_code(response) == "ERR_BAD_REQUEST"
    details = response.json()["error"]["details"]
    assert set(details) == {"uid", "name"}
    response = rest.post("/users", json={"uid": "eve", "name": "n" * 101})
    assert response.status_code == 400
    assert error_code(response) == "ERR_BAD_REQUEST"
    assert "name" in response.json()["error"]["details"]


def test_api_key_checks(cometchat_emulator: CometChatEmulator) -> None:
    url = cometchat_emulator.base_url + "/users/x"
    missing = loopback.get(url)
    assert missing.status_code == 401
    assert error_code(missing) == "AUTH_ERR_EMPTY_APIKEY"
    wrong = loopback.get(url, headers={"apikey": "not-a-key"})
    assert wrong.status_code == 404
    assert error_code(wrong) == "AUTH_ERR_APIKEY_NOT_FOUND"


def test_auth_key_may_only_create_users_and_tokens(cometchat_emulator: CometChatEmulator) -> None:
    with loopback.client(
        base_url=cometchat_emulator.base_url, headers={"apikey": DEFAULT_AUTH_KEY}
    ) as auth_only:
        assert auth_only.post("/users", json={"uid": "frank", "name": "F"}).status_code == 200
        created = auth_only.post("/users/frank/auth_tokens", json={})
        assert created.status_code == 200
        token = created.json()["data"]["authToken"]
        for method, path in [
            ("GET", "/users/frank"),
            ("GET", "/users/frank/auth_tokens"),
            ("DELETE", f"/users/frank/auth_tokens/{token}"),
            ("DELETE", "/users/frank/auth_tokens"),
            ("DELETE", "/users/frank"),
        ]:
            response = auth_only.request(method, path)
            assert response.status_code == 403, (method, path)
            assert error_code(response) == "AUTH_ERR_NO_ACCESS"
    assert cometchat_emulator.is_token_alive(token)


def test_auth_token_lifecycle(
    rest: httpx.Client, client_api: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    rest.post("/users", json={"uid": "gina", "name": "Gina"})
    first = rest.post("/users/gina/auth_tokens", json={}).json()["data"]
    second = rest.post("/users/gina/auth_tokens", json={"force": True}).json()["data"]
    assert first["uid"] == second["uid"] == "gina"
    assert isinstance(first["createdAt"], int)
    # Emulator decision: every create is a new token.
    assert first["authToken"] != second["authToken"]

    listed = rest.get("/users/gina/auth_tokens").json()
    assert [t["authToken"] for t in listed["data"]] == [first["authToken"], second["authToken"]]
    assert listed["meta"]["pagination"]["total"] == 2

    one = rest.get(f"/users/gina/auth_tokens/{first['authToken']}")
    assert one.status_code == 200
    assert one.json()["data"]["authToken"] == first["authToken"]

    # Both tokens log in like the front-end SDK does.
    login = client_api.put("/me", headers={"authToken": first["authToken"]})
    assert login.status_code == 200
    assert login.json()["data"]["uid"] == "gina"

    deleted = rest.delete(f"/users/gina/auth_tokens/{first['authToken']}")
    assert deleted.status_code == 200
    assert deleted.json()["data"]["success"] is True
    assert not cometchat_emulator.is_token_alive(first["authToken"])
    assert cometchat_emulator.is_token_alive(second["authToken"])

    # The deleted token is dead for the SDK and for the REST API.
    relogin = client_api.put("/me", headers={"authToken": first["authToken"]})
    assert relogin.status_code == 401
    assert error_code(relogin) == "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"
    gone = rest.get(f"/users/gina/auth_tokens/{first['authToken']}")
    assert gone.status_code == 401
    assert error_code(gone) == "ERR_AUTH_TOKEN_NOT_FOUND"
    again = rest.delete(f"/users/gina/auth_tokens/{first['authToken']}")
    assert again.status_code == 401
    assert error_code(again) == "ERR_AUTH_TOKEN_NOT_FOUND"

    flushed = rest.delete("/users/gina/auth_tokens")
    assert flushed.status_code == 200
    assert cometchat_emulator.tokens_of("gina") == []
    assert client_api.put("/me", headers={"authToken": second["authToken"]}).status_code == 401


def test_update_token_device_info(
    rest: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    rest.post("/users", json={"uid": "hal", "name": "Hal"})
    token = cometchat_emulator.create_token("hal")
    response = rest.put(f"/users/hal/auth_tokens/{token}", json={"platform": "javascript"})
    assert response.status_code == 200
    assert response.json()["data"]["platform"] == "javascript"
    assert response.json()["data"]["authToken"] == token


def test_only_newest_tokens_stay_valid(
    cometchat_emulator: CometChatEmulator, rest: httpx.Client
) -> None:
    cometchat_emulator.create_user("ivy")
    tokens = [cometchat_emulator.create_token("ivy") for _ in range(100)]
    newest = rest.post("/users/ivy/auth_tokens", json={}).json()["data"]["authToken"]
    assert not cometchat_emulator.is_token_alive(tokens[0])
    assert cometchat_emulator.is_token_alive(tokens[1])
    assert cometchat_emulator.is_token_alive(newest)
    assert len(cometchat_emulator.tokens_of("ivy")) == 100


def test_client_logout_destroys_only_that_token(
    client_api: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    cometchat_emulator.create_user("jo")
    laptop = cometchat_emulator.create_token("jo")
    phone = cometchat_emulator.create_token("jo")
    response = client_api.delete("/me", headers={"authToken": laptop})
    assert response.status_code == 200
    assert not cometchat_emulator.is_token_alive(laptop)
    assert cometchat_emulator.is_token_alive(phone)


def test_client_login_header_checks(cometchat_emulator: CometChatEmulator) -> None:
    cometchat_emulator.create_user("kim")
    token = cometchat_emulator.create_token("kim")
    url = cometchat_emulator.client_url + "/me"
    cases = [
        ({"authToken": token}, "AUTH_ERR_EMPTY_APPID"),
        ({"appid": "other-app", "authToken": token}, "AUTH_ERR_INVALID_APPID"),
        ({"appid": DEFAULT_APP_ID}, "AUTH_ERR_EMPTY_AUTH_TOKEN"),
        ({"appid": DEFAULT_APP_ID, "authToken": "kim_123unknown"}, "AUTH_ERR_AUTH_TOKEN_NOT_FOUND"),
    ]
    for headers, code in cases:
        response = loopback.put(url, headers=headers)
        assert response.status_code == 401
        assert error_code(response) == code
    assert cometchat_emulator.logins == []


def test_delete_user_kills_its_tokens(
    rest: httpx.Client, cometchat_emulator: CometChatEmulator
) -> None:
    cometchat_emulator.create_user("lee")
    token = cometchat_emulator.create_token("lee")
    assert rest.request("DELETE", "/users/lee", json={"permanent": True}).status_code == 200
    assert not cometchat_emulator.is_token_alive(token)
    assert rest.get("/users/lee").status_code == 404


def test_calls_are_recorded(rest: httpx.Client, cometchat_emulator: CometChatEmulator) -> None:
    rest.post("/users", json={"uid": "max", "name": "Max"})
    rest.post("/users/max/auth_tokens", json={})
    assert cometchat_emulator.calls == [
        ("POST", "/v3/users"),
        ("POST", "/v3/users/max/auth_tokens"),
    ]
    assert cometchat_emulator.calls.count(("POST", "/v3/users/max/auth_tokens")) == 1
    assert cometchat_emulator.calls.count_of("POST", "/v3/users", prefix=True) == 2


def test_repr_shows_no_keys(cometchat_emulator: CometChatEmulator) -> None:
    text = repr(cometchat_emulator)
    assert DEFAULT_API_KEY not in text
    assert DEFAULT_AUTH_KEY not in text
    assert cometchat_emulator.url in text
