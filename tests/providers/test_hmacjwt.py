"""The fast HMAC signer writes exactly what ``jwt.encode`` writes, and keeps PyJWT's key
checks."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from chatauth.providers.hmacjwt import HMACSigner
from chatauth.providers.jwt import JWTSigner

SECRET = "a-shared-secret-long-enough-for-hs512-" * 2


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
@pytest.mark.parametrize("headers", [None, {"kid": "key-1"}])
def test_same_bytes_as_pyjwt(algorithm: str, headers: dict[str, str] | None) -> None:
    claims = {
        "sub": "user-é☃",
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
        "jti": "x",
        "extra": {"list": [1, 2.5, None, True]},
    }
    ours = HMACSigner(algorithm, SECRET, headers).sign(claims)
    assert ours == pyjwt.encode(claims, SECRET, algorithm=algorithm, headers=headers)
    assert pyjwt.decode(ours, SECRET, algorithms=[algorithm])["sub"] == "user-é☃"


def test_a_pem_key_is_refused_as_pyjwt_refuses_it() -> None:
    pem = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"
    with pytest.raises(pyjwt.InvalidKeyError):
        HMACSigner("HS256", pem)


def test_the_signer_falls_back_to_pyjwt_for_datetime_claims() -> None:
    from datetime import datetime, timezone

    signer = JWTSigner("HS256", secret=SECRET)
    moment = datetime(2027, 1, 1, tzinfo=timezone.utc)
    token = signer.sign({"sub": "u", "exp": moment})
    assert pyjwt.decode(token, SECRET, algorithms=["HS256"])["exp"] == int(moment.timestamp())


def test_a_short_key_warns_on_each_sign_as_pyjwt_does() -> None:
    signer = HMACSigner("HS256", "short")  # no warning yet: PyJWT warns when encoding
    with pytest.warns(pyjwt.warnings.InsecureKeyLengthWarning):
        signer.sign({"sub": "u"})
