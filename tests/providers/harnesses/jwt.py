"""The generic JWT provider: minted locally, verified here as a chat server would (pyjwt with
the algorithm pinned)."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from chatauth.providers.jwt import JWTProvider, JWTSigner
from chatauth.testing import canary
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness

MAKES_HTTP_CALLS = False
SECRET = canary.secret("jwt-conformance-secret")


def offline(url: str) -> JWTProvider:
    """The provider (it makes no request: ``url`` is not used), for the properties that
    drive every provider (tests/providers/test_hostile_answers.py)."""
    return JWTProvider(JWTSigner("HS256", secret=SECRET), audience="chat")


def _alive(token: ChatToken) -> bool:
    try:
        claims = pyjwt.decode(token.value, SECRET, algorithms=["HS256"], audience="chat")
    except pyjwt.PyJWTError:
        return False
    return bool(claims["sub"] == token.uid)


@pytest.fixture(name="harness_jwt")
def harness_jwt() -> Harness:
    return Harness(
        name="jwt",
        provider=JWTProvider(JWTSigner("HS256", secret=SECRET), audience="chat"),
        make_bad_provider=lambda: JWTProvider(JWTSigner("HS256", secret="")),
        is_alive=_alive,
        faults=None,
        issue_calls=lambda: 0,
    )
