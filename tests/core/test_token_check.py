"""Token values: one regex decides, with the CometChat SDK's codes; a token read back from the
store is not scanned again (issue 19)."""

from __future__ import annotations

import pytest

from chatauth import tokens
from chatauth.errors import InvalidTokenError
from chatauth.tokens import ChatToken, check_token_value, utcnow


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "ERROR_BLANK_AUTHTOKEN"),
        (" \t\u00a0", "ERROR_BLANK_AUTHTOKEN"),
        ("abc def", "ERROR_AUTHTOKEN_WITH_SPACE"),
        ("abc\u2028", "ERROR_AUTHTOKEN_WITH_SPACE"),  # Unicode white space, as str.isspace()
        ("abc\n", "ERROR_AUTHTOKEN_WITH_SPACE"),
    ],
)
def test_bad_values_keep_their_codes(value: str, code: str) -> None:
    with pytest.raises(InvalidTokenError) as info:
        check_token_value(value)
    assert info.value.code == code


def test_a_good_value_passes() -> None:
    check_token_value("eyJhbGciOi.JIUzI1NiJ9-_~+/=")


def test_a_stored_token_is_not_checked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    token = ChatToken("value", "user-1", "jwt", utcnow(), None)
    calls: list[str] = []
    monkeypatch.setattr(tokens, "check_token_value", calls.append)
    assert ChatToken.from_dict(token.to_dict()) == token
    assert calls == []
    ChatToken("other", "user-1", "jwt", utcnow(), None)  # a new token still is
    assert calls == ["other"]
