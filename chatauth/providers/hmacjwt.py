"""HS256/384/512 JWTs signed without PyJWT's per-call overhead, byte for byte what
``jwt.encode`` writes for the same claims and key.

PyJWT checks and prepares the key, rebuilds and serialises the header and looks the algorithm
up on every call; for a locally minted chat token that is most of the cost of ``issue()``.
Here the key is checked once, with PyJWT's own ``prepare_key`` (so a PEM or SSH public key is
refused as an HMAC secret just as PyJWT refuses it), and the header is serialised once.
Reference: RFC 7515 §7.1 (compact serialisation), RFC 7518 §3.2 (HMAC with SHA-2).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import jwt as pyjwt
from jwt.algorithms import HMACAlgorithm

__all__ = ["HMACSigner"]

_DIGESTS: dict[str, Callable[..., Any]] = {
    "HS256": hashlib.sha256,
    "HS384": hashlib.sha384,
    "HS512": hashlib.sha512,
}


def _b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


class HMACSigner:
    """Signs claim sets with one HMAC algorithm and key.

    Args:
        algorithm: ``HS256``, ``HS384`` or ``HS512``.
        key: the shared secret.
        headers: extra JOSE header fields (``kid``), as PyJWT's ``headers=``.

    Raises:
        jwt.InvalidKeyError: the key is a PEM or SSH key (PyJWT's own check).
    """

    def __init__(
        self, algorithm: str, key: str | bytes, headers: Mapping[str, Any] | None = None
    ) -> None:
        self._digest = _DIGESTS[algorithm]
        # PyJWT's key checks, once; the warnings it gives (a key too short for the algorithm)
        # are kept and given again on each sign(), where PyJWT gives them.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pyjwt.encode({}, key, algorithm=algorithm, headers=dict(headers or {}) or None)
        self._warnings = [(w.message, w.category) for w in caught]
        self._key = HMACAlgorithm(self._digest).prepare_key(key)
        # As PyJWT builds it: typ and alg, then the extra fields; keys sorted, no spaces.
        header = {"typ": "JWT", "alg": algorithm, **(headers or {})}
        self._header = _b64(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims`` (JSON values only: ints for ``exp``/``iat``).

        Raises:
            TypeError: a claim that JSON cannot encode.
        """
        for message, category in self._warnings:
            warnings.warn(message, category, stacklevel=3)
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signing_input = self._header + b"." + payload
        signature = hmac.new(self._key, signing_input, self._digest).digest()
        return (signing_input + b"." + _b64(signature)).decode()
