from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from chatauth import (
    ChatToken,
    ConfigurationError,
    InvalidTokenError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    SessionKey,
)
from chatauth.responses import error_answer

SECRET_VALUE = "sekr3t-token-value-do-not-leak"
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)


def make(**kw: object) -> ChatToken:
    base: dict[str, object] = {
        "value": SECRET_VALUE,
        "uid": "u1",
        "provider": "p",
        "issued_at": T0,
        "expires_at": T0 + timedelta(hours=1),
    }
    base.update(kw)
    return ChatToken(**base)  # type: ignore[arg-type]


def test_repr_and_str_never_show_the_value() -> None:
    token = make(data={"device_id": "D1"}, public=("device_id",))
    assert SECRET_VALUE not in repr(token)
    assert "redacted" in repr(token)
    assert SECRET_VALUE not in str(token)
    assert token.fingerprint != SECRET_VALUE and len(token.fingerprint) == 12


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "ERROR_BLANK_AUTHTOKEN"),
        ("  ", "ERROR_BLANK_AUTHTOKEN"),
        ("a b", "ERROR_AUTHTOKEN_WITH_SPACE"),
    ],
)
def test_unusable_token_values_are_refused(value: str, code: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        make(value=value)
    assert info.value.code == code


def test_round_trip_keeps_everything() -> None:
    token = make(
        refresh_at=T0 + timedelta(minutes=30), data={"user_id": "@u:x"}, public=("user_id",)
    )
    assert ChatToken.from_dict(token.to_dict()) == token


def test_freshness_uses_the_earlier_of_expiry_and_refresh() -> None:
    token = make(refresh_at=T0 + timedelta(minutes=30))
    margin = timedelta(minutes=5)
    assert token.is_fresh(margin, now=T0 + timedelta(minutes=24))
    assert not token.is_fresh(margin, now=T0 + timedelta(minutes=26))
    never = make(expires_at=None)
    assert never.is_fresh(margin, now=T0 + timedelta(days=999))
    assert not never.is_expired(now=T0 + timedelta(days=999))


def test_naive_datetimes_are_taken_as_utc() -> None:
    token = make(issued_at=datetime(2026, 1, 1), expires_at=None)
    assert token.issued_at.tzinfo is timezone.utc


def test_session_key_hides_the_app_session() -> None:
    key = SessionKey("p", "u", "django-session-key-123")
    assert "django-session-key-123" not in repr(key)
    assert key.digest != SessionKey("p", "u", "other").digest
    assert key.user_digest == SessionKey("p", "u", "other").user_digest


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotAuthenticatedError(), 401),
        (ProviderUnavailableError("down", provider="x", retry_after=7), 503),
        (ProviderError("no", provider="x", status=403, code="M_FORBIDDEN"), 502),
        (ConfigurationError("bad", setting="X"), 500),
    ],
)
def test_error_answers(error: Exception, status: int) -> None:
    got_status, body, headers = error_answer(error)  # type: ignore[arg-type]
    assert got_status == status
    assert headers["Cache-Control"] == "no-store"
    assert body["error"]["code"] == error.code  # type: ignore[attr-defined]
    if status == 503:
        assert headers["Retry-After"] == "7"


def test_error_str_has_code_and_no_secret() -> None:
    exc = ProviderError(
        "cometchat refused POST with HTTP 401.",
        provider="cometchat",
        status=401,
        code="AUTH_ERR_APIKEY_NOT_FOUND",
    )
    assert str(exc).startswith("[AUTH_ERR_APIKEY_NOT_FOUND]")
    assert "ProviderError(code='AUTH_ERR_APIKEY_NOT_FOUND'" in repr(exc)


def test_retry_after_is_at_least_one_second() -> None:
    assert ProviderUnavailableError("x", provider="p", retry_after=0).retry_after == 1
