"""Twilio specifics: the ``twilio`` helper as oracle, ``ttl`` in seconds capped at 24 h."""

from __future__ import annotations

from datetime import timedelta

import jwt as pyjwt
import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import ChatGrant

from chatauth import ChatIdentity, ConfigurationError, InvalidUIDError, from_settings
from chatauth.http import run_flow
from chatauth.providers.twilio import MAX_TTL, TwilioProvider
from chatauth.testing import canary
from chatauth.testing.twilio import AccessTokenError, TwilioEmulator

ACCOUNT = "AC" + "1" * 32
KEY = "SK" + "2" * 32
SERVICE = "IS" + "3" * 32
SECRET = canary.secret("twilio-oracle-secret")


def _issue(provider: TwilioProvider, uid: str, ttl: timedelta) -> str:
    import httpx

    with httpx.Client() as client:
        return run_flow(provider.issue(ChatIdentity(uid), ttl), client, provider="twilio").value


def _parts(token: str) -> tuple[dict[str, object], dict[str, object]]:
    header = pyjwt.get_unverified_header(token)
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_exp": False})
    return header, claims


@pytest.mark.parametrize("region", [None, "ie1"])
@pytest.mark.parametrize("ttl", [600, 3600, 86_400])
def test_header_and_claims_equal_the_helper(region: str | None, ttl: int) -> None:
    ours = _issue(
        TwilioProvider(ACCOUNT, KEY, SECRET, SERVICE, region=region),
        "alice",
        timedelta(seconds=ttl),
    )
    helper = AccessToken(ACCOUNT, KEY, SECRET, identity="alice", ttl=ttl, region=region)
    helper.add_grant(ChatGrant(service_sid=SERVICE))
    theirs = helper.to_jwt()
    our_header, our_claims = _parts(ours)
    their_header, their_claims = _parts(theirs)
    assert our_header == their_header
    assert list(our_header) == list(their_header)  # same order, so same encoded header
    for claims in (our_claims, their_claims):
        assert claims["exp"] - claims["nbf"] == ttl  # type: ignore[operator]
        assert str(claims.pop("jti")).startswith(f"{KEY}-")
        claims.pop("exp"), claims.pop("nbf")
    assert our_claims == their_claims
    assert our_claims["grants"] == {"chat": {"service_sid": SERVICE}, "identity": "alice"}


def test_ttl_is_seconds_capped_at_24_hours() -> None:
    provider = TwilioProvider(ACCOUNT, KEY, SECRET, SERVICE)
    assert TwilioProvider.ttl_seconds(timedelta(minutes=15)) == 900
    assert TwilioProvider.ttl_seconds(timedelta(days=3)) == MAX_TTL == 86_400
    _, claims = _parts(_issue(provider, "alice", timedelta(days=3)))
    assert claims["exp"] - claims["nbf"] == 86_400  # type: ignore[operator]
    # Twilio's own check accepts the capped token; an uncapped one it refuses with 20157.
    emulator = TwilioEmulator(
        account_sid=ACCOUNT, api_key_sid=KEY, api_key_secret=SECRET, service_sid=SERVICE
    )
    assert emulator.verify_access_token(_issue(provider, "alice", timedelta(days=3)))
    too_long = AccessToken(ACCOUNT, KEY, SECRET, identity="alice", ttl=86_401)
    too_long.add_grant(ChatGrant(service_sid=SERVICE))
    with pytest.raises(AccessTokenError) as info:
        emulator.verify_access_token(too_long.to_jwt())
    assert info.value.code == 20157


def test_two_tokens_in_one_second_differ() -> None:
    provider = TwilioProvider(ACCOUNT, KEY, SECRET, SERVICE)
    assert _issue(provider, "alice", timedelta(hours=1)) != _issue(
        provider, "alice", timedelta(hours=1)
    )


@pytest.mark.parametrize("uid", ["a/b", "x@y", "US" + "a" * 32, "with space"])
def test_identity_rules(uid: str) -> None:
    with pytest.raises(InvalidUIDError):
        TwilioProvider.uid_rules.validate(uid, "twilio")


def test_settings() -> None:
    settings = {
        "PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_API_KEY_SID": KEY,
        "TWILIO_API_KEY_SECRET": SECRET,
        "TWILIO_SERVICE_SID": SERVICE,
        "STORE": "memory://",
    }
    chat = from_settings(settings)
    assert chat.provider.revocation == "none"
    assert chat.provider.client_config() == {}
    with pytest.raises(ConfigurationError) as info:
        from_settings({**settings, "TWILIO_API_KEY_SECRET": ""})
    assert info.value.code == "ERROR_API_KEY_NOT_FOUND"
    with pytest.raises(ConfigurationError) as info:
        from_settings({**settings, "TWILIO_SERVICE_SID": "nope"})
    assert info.value.code == "ERROR_CONFIG"
