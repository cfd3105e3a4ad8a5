"""Twilio emulator: Conversations user creation over real HTTP, and the Access Token check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from chatauth.testing.twilio import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_API_KEY_SECRET,
    DEFAULT_API_KEY_SID,
    DEFAULT_AUTH_TOKEN,
    DEFAULT_SERVICE_SID,
    AccessTokenError,
    TwilioEmulator,
)
from tests.testing import _loopback as loopback

T0 = 1_700_000_000


@pytest.fixture
def api(twilio_emulator: TwilioEmulator) -> Iterator[httpx.Client]:
    with loopback.client(
        base_url=twilio_emulator.base_url,
        timeout=5,
        auth=(DEFAULT_API_KEY_SID, DEFAULT_API_KEY_SECRET),
    ) as client:
        yield client


def twilio_error(response: httpx.Response, status: int) -> int:
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert body["message"]
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    return int(body["code"])


def test_create_user(api: httpx.Client) -> None:
    response = api.post("/Users", data={"Identity": "alice@example.com", "FriendlyName": "Alice"})
    assert response.status_code == 201
    user = response.json()
    assert user["sid"].startswith("US")
    assert len(user["sid"]) == 34
    assert user["identity"] == "alice@example.com"
    assert user["friendly_name"] == "Alice"
    assert user["account_sid"] == DEFAULT_ACCOUNT_SID
    assert user["chat_service_sid"] == DEFAULT_SERVICE_SID
    assert user["url"].endswith(f"/v1/Users/{user['sid']}")
    assert api.get(f"/Users/{user['sid']}").json()["identity"] == "alice@example.com"
    assert api.get("/Users/alice@example.com").json()["sid"] == user["sid"]


def test_duplicate_identity_is_409_50201(api: httpx.Client) -> None:
    api.post("/Users", data={"Identity": "bob"})
    assert twilio_error(api.post("/Users", data={"Identity": "bob"}), 409) == 50201
    # Identities are case-sensitive.
    assert api.post("/Users", data={"Identity": "Bob"}).status_code == 201


def test_create_validation(api: httpx.Client) -> None:
    assert twilio_error(api.post("/Users", data={}), 400) == 20001
    assert twilio_error(api.post("/Users", data={"Identity": "US" + "a" * 32}), 400) == 20001
    assert (
        twilio_error(api.post("/Users", data={"Identity": "x", "Attributes": "{bad"}), 400) == 20001
    )


def test_unknown_and_deleted_user(api: httpx.Client) -> None:
    assert twilio_error(api.get("/Users/US" + "0" * 32), 404) == 20404
    sid = api.post("/Users", data={"Identity": "carol"}).json()["sid"]
    assert api.delete(f"/Users/{sid}").status_code == 204
    assert twilio_error(api.get(f"/Users/{sid}"), 404) == 20404


@pytest.mark.parametrize(
    "auth", [None, (DEFAULT_API_KEY_SID, "wrong"), ("SK" + "1" * 32, DEFAULT_API_KEY_SECRET)]
)
def test_basic_auth(twilio_emulator: TwilioEmulator, auth: tuple[str, str] | None) -> None:
    response = loopback.post(twilio_emulator.base_url + "/Users", data={"Identity": "x"}, auth=auth)
    assert twilio_error(response, 401) == 20003


def test_account_sid_and_auth_token_also_authenticate(twilio_emulator: TwilioEmulator) -> None:
    response = loopback.post(
        twilio_emulator.base_url + "/Users",
        data={"Identity": "dan"},
        auth=(DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN),
    )
    assert response.status_code == 201


# -- Access Tokens ------------------------------------------------------------------------


def access_token(
    identity: str = "erin",
    *,
    ttl: int = 3600,
    nbf: int | None = T0,
    secret: str = DEFAULT_API_KEY_SECRET,
    headers: dict[str, Any] | None = None,
    **overrides: Any,
) -> str:
    """Shaped like twilio-python's AccessToken with a ChatGrant (no twr)."""
    payload: dict[str, Any] = {
        "jti": f"{DEFAULT_API_KEY_SID}-{T0}",
        "grants": {"identity": identity, "chat": {"service_sid": DEFAULT_SERVICE_SID}},
        "iss": DEFAULT_API_KEY_SID,
        "sub": DEFAULT_ACCOUNT_SID,
        "exp": T0 + ttl,
    }
    if nbf is not None:
        payload["nbf"] = nbf
    payload.update(overrides)
    return jwt.encode(
        payload,
        secret,
        algorithm="HS256",
        headers=headers if headers is not None else {"cty": "twilio-fpa;v=1"},
    )


@pytest.fixture
def emulator() -> TwilioEmulator:
    return TwilioEmulator(clock=lambda: T0 + 10)


def test_valid_token(emulator: TwilioEmulator) -> None:
    claims = emulator.verify_access_token(access_token())
    assert claims["grants"]["identity"] == "erin"
    assert emulator.verify_access_token(access_token(ttl=86400))["exp"] == T0 + 86400


def failure(emulator: TwilioEmulator, token: str) -> int:
    with pytest.raises(AccessTokenError) as info:
        emulator.verify_access_token(token)
    return info.value.code


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: "not.a.jwt", 20101),
        (lambda: access_token(headers={}), 20102),
        (lambda: access_token(headers={"cty": "something-else"}), 20102),
        (lambda: access_token(secret="another-secret-of-sufficient-length!!"), 20107),
        (lambda: access_token(iss="SK" + "9" * 32), 20107),
        (lambda: access_token(sub="AC" + "9" * 32), 20103),
        (lambda: access_token(ttl=5), 20104),
        (lambda: access_token(exp=None), 20104),
        (lambda: access_token(nbf=T0 + 60), 20105),
        (lambda: access_token(ttl=86401), 20157),
        (lambda: access_token(identity=""), 20106),
        (lambda: access_token(grants={"identity": "erin"}), 20106),
        (
            lambda: access_token(
                grants={"identity": "erin", "chat": {"service_sid": "IS" + "9" * 32}}
            ),
            20106,
        ),
    ],
)
def test_refused_tokens(emulator: TwilioEmulator, make: Callable[[], str], code: int) -> None:
    assert failure(emulator, make()) == code


def test_ttl_cap_without_nbf_counts_from_now(emulator: TwilioEmulator) -> None:
    # now = T0 + 10: exp = T0 + 86405 is 86395 s away, within the cap.
    assert emulator.verify_access_token(access_token(nbf=None, ttl=86405))
    assert failure(emulator, access_token(nbf=None, ttl=86411)) == 20157


def test_deleting_the_api_key_revokes_its_tokens(emulator: TwilioEmulator) -> None:
    token = access_token()
    emulator.verify_access_token(token)
    emulator.revoke_api_key()
    assert failure(emulator, token) == 20107
