"""Generic JWT provider: a token minted locally with pyjwt.

For any chat server that verifies a shared key or a public key: Synapse's ``jwt_config``,
Centrifugo, a home-grown socket server. Reference: RFC 7519 and PyJWT's ``jwt.encode``
(https://pyjwt.readthedocs.io/). No HTTP call is made.

Claims: ``sub`` (the UID), ``iat``, ``exp`` (``iat`` + ``token_ttl``), ``jti`` (random, so a
server can keep a denylist), optional ``iss``, ``aud``, ``name`` and extra claims. Revocation:
``none`` -- a JWT stays valid until ``exp``; keep ``token_ttl`` short.

Settings: ``JWT_*``, declared once in :attr:`JWTProvider.settings_spec` (the class docstring's
table is generated from it): ``JWT_SECRET`` or ``JWT_PRIVATE_KEY`` as the algorithm needs.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import jwt as pyjwt

from chatauth.errors import ConfigurationError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers.base import BaseProvider, Revocation, no_requests
from chatauth.providers.hmacjwt import HMACSigner
from chatauth.settings import Setting, check_hmac_secret
from chatauth.tokens import ChatToken, utcnow

__all__ = ["JWTProvider", "JWTSigner"]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
KEY_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)


class JWTSigner:
    """Signs claims with one pinned algorithm and key; shared by the JWT and Matrix providers.

    Args:
        algorithm: one of HS256/384/512 (needs ``secret``) or RS*/PS*/ES*/EdDSA (needs
            ``private_key``). ``none`` is refused.
        secret: the shared secret for HMAC algorithms.
        private_key: PEM text, or a path to a PEM file.
        key_id: optional ``kid`` header.

    Raises:
        ConfigurationError: unknown algorithm or an HMAC secret shorter than the hash (RFC 7518
            §3.2: 32 bytes for HS256, 48 for HS384, 64 for HS512) (``ERROR_CONFIG``), or a
            missing key (``ERROR_API_KEY_NOT_FOUND``).
    """

    def __init__(
        self,
        algorithm: str = "HS256",
        *,
        secret: str | None = None,
        private_key: str | None = None,
        key_id: str | None = None,
        setting_prefix: str = "JWT",
    ) -> None:
        if algorithm in HMAC_ALGORITHMS:
            if not secret:
                raise ConfigurationError(
                    f"{setting_prefix}_SECRET is required for {algorithm}.",
                    setting=f"{setting_prefix}_SECRET",
                    code="ERROR_API_KEY_NOT_FOUND",
                )
            check_hmac_secret(secret, algorithm, f"{setting_prefix}_SECRET")
            self._key: str | bytes = secret
        elif algorithm in KEY_ALGORITHMS:
            if not private_key:
                raise ConfigurationError(
                    f"{setting_prefix}_PRIVATE_KEY is required for {algorithm}.",
                    setting=f"{setting_prefix}_PRIVATE_KEY",
                    code="ERROR_API_KEY_NOT_FOUND",
                )
            self._key = _read_pem(private_key, f"{setting_prefix}_PRIVATE_KEY")
        else:
            raise ConfigurationError(
                f"Unsupported {setting_prefix}_ALGORITHM {algorithm!r}; use one of "
                f"{', '.join(sorted(HMAC_ALGORITHMS | KEY_ALGORITHMS))}.",
                setting=f"{setting_prefix}_ALGORITHM",
            )
        self.algorithm = algorithm
        self.key_id = key_id
        self._hmac: HMACSigner | None = None
        if algorithm in HMAC_ALGORITHMS:
            # A key PyJWT refuses leaves the PyJWT path in place, which raises on signing.
            with contextlib.suppress(pyjwt.PyJWTError, ValueError, TypeError):
                self._hmac = HMACSigner(algorithm, self._key, {"kid": key_id} if key_id else None)

    def __repr__(self) -> str:
        return f"<JWTSigner {self.algorithm}>"

    def sign(self, claims: Mapping[str, Any]) -> str:
        """The compact JWS of ``claims``.

        Raises:
            ConfigurationError: the key does not fit the algorithm (bad PEM, wrong curve).
        """
        headers = {"kid": self.key_id} if self.key_id else None
        try:
            # PyJWT turns datetime time claims into numbers; the fast path takes numbers only.
            if self._hmac is not None and not any(
                isinstance(claims.get(name), datetime) for name in ("exp", "iat", "nbf")
            ):
                return self._hmac.sign(claims)
            return pyjwt.encode(dict(claims), self._key, algorithm=self.algorithm, headers=headers)
        except (ValueError, TypeError, pyjwt.PyJWTError) as exc:
            raise ConfigurationError(
                f"Cannot sign with {self.algorithm}: {type(exc).__name__}.",
                setting="JWT_PRIVATE_KEY",
            ) from None


def _read_pem(value: str, setting: str) -> bytes:
    if "-----BEGIN" in value:
        return value.encode()
    path = Path(value)
    if not path.is_file():
        raise ConfigurationError(
            f"{setting} is neither PEM text nor a readable file.", setting=setting
        )
    return path.read_bytes()


def _timestamp(moment: datetime) -> int:
    return int(moment.timestamp())


class JWTProvider(BaseProvider):
    """Mints a JWT per chat session; no server calls, no revocation (``revocation="none"``).

    Args:
        signer: the :class:`JWTSigner`.
        issuer, audience: optional ``iss`` / ``aud`` claims.
        claims: extra claims merged into every token (cannot override the registered ones).
        max_ttl: an upper bound on ``exp - iat`` in seconds, if the verifying server has one.
    """

    name = "jwt"
    revocation: ClassVar[Revocation] = "none"
    # A JWT's sub is any string; keep UIDs printable, URL- and header-safe.
    uid_rules = UIDRules(
        pattern=r"[A-Za-z0-9._@+=\-]+",
        max_length=255,
        description="letters, digits and . _ @ + = -",
    )
    settings_prefix = "jwt"
    settings_spec = (
        Setting("secret", "the shared secret (HS256/384/512)", secret=True),
        Setting(
            "private_key",
            "PEM text or a path to a PEM file (RS*/PS*/ES*/EdDSA)",
            secret=True,
        ),
        Setting(
            "algorithm",
            "the signing algorithm",
            default="HS256",
            choices=tuple(sorted(HMAC_ALGORITHMS | KEY_ALGORITHMS)),
        ),
        Setting("issuer", "the iss claim"),
        Setting("audience", "the aud claim"),
        Setting("claims", "extra claims merged into every token", kind="mapping"),
        Setting("key_id", "the kid header"),
    )

    def __init__(
        self,
        signer: JWTSigner,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        claims: Mapping[str, Any] | None = None,
        max_ttl: float | None = None,
    ) -> None:
        self.signer = signer
        self.issuer = issuer
        self.audience = audience
        self.claims = dict(claims or {})
        self.max_ttl = max_ttl

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> JWTProvider:
        """Build from ``jwt_*`` settings (the declared ones, checked by the core reader).

        Raises:
            ConfigurationError: a required key is missing or malformed.
        """
        given = cls._declared(
            **{s.name: settings.get(cls.setting_key(s.name)) for s in cls.settings_spec}
        )
        signer = JWTSigner(
            given["algorithm"],
            secret=given["secret"],
            private_key=given["private_key"],
            key_id=given["key_id"],
        )
        return cls(
            signer,
            issuer=given["issuer"],
            audience=given["audience"],
            claims=given["claims"] or {},
        )

    def build_claims(self, identity: ChatIdentity, ttl: timedelta, now: datetime) -> dict[str, Any]:
        """The claim set for ``identity``: extra claims, then the registered ones on top."""
        seconds = ttl.total_seconds()
        if self.max_ttl is not None:
            seconds = min(seconds, self.max_ttl)
        claims: dict[str, Any] = dict(self.claims)
        if identity.name:
            claims.setdefault("name", identity.name)
        claims.update(
            sub=identity.uid,
            iat=_timestamp(now),
            exp=_timestamp(now) + int(seconds),
            jti=secrets.token_urlsafe(16),
        )
        if self.issuer:
            claims["iss"] = self.issuer
        if self.audience:
            claims["aud"] = self.audience
        return claims

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        now = utcnow().replace(microsecond=0)
        claims = self.build_claims(identity, ttl, now)
        token = ChatToken(
            value=self.signer.sign(claims),
            uid=identity.uid,
            provider=self.name,
            issued_at=now,
            expires_at=datetime.fromtimestamp(claims["exp"], now.tzinfo),
        )
        return no_requests(token)

    def revoke(self, token: ChatToken) -> Flow[None]:
        return no_requests(None)

    def client_config(self) -> dict[str, str]:
        config = {"algorithm": self.signer.algorithm}
        if self.issuer:
            config["issuer"] = self.issuer
        return config
