"""Twilio Conversations provider: an Access Token with a chat grant, minted locally.

References: the official helper ``twilio/twilio-python`` ``twilio/jwt/access_token``
(``AccessToken`` + ``grants.ChatGrant``) and "Access Tokens"
(https://www.twilio.com/docs/iam/access-tokens), "Conversations -> User Identity & Access
Tokens" (https://www.twilio.com/docs/conversations/identity).

The token is an HS256 JWT signed with the API key secret, built exactly as the helper builds
it (a test uses the helper as oracle; only ``jti``, which gets a random suffix so that two
tokens minted in the same second differ, and the timestamps are not compared):

* header ``{"cty": "twilio-fpa;v=1", "twr"?: region, "typ": "JWT", "alg": "HS256"}``;
* payload ``{"jti": "<key SID>-<now>-<random>", "grants": {"chat": {"service_sid": "IS..."},
  "identity": uid}, "iss": <key SID>, "exp": now + ttl, "nbf": now, "sub": <account SID>}``.

``ttl`` is ``token_ttl`` in seconds, capped at 86,400 (Twilio refuses longer tokens with error
20157). No HTTP call is made: Conversations creates the user on first connect.

Revocation: ``none``. Twilio has no per-token revocation; a token lives until ``exp``, so keep
``token_ttl`` short (the default one hour is the helper's default too). The only kill switch is
deleting the API key, which invalidates every token it signed.

Identity: case-sensitive; chatauth refuses white space and the characters Twilio says to avoid
(``! * ' ( ) ; : @ & = + $ , / ? % # [ ]``) and identities shaped like a User SID (``US`` + 32
hex).

Settings: ``TWILIO_*``, declared once in :attr:`TwilioProvider.settings_spec` (the class
docstring's table is generated from it).
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import httpx
import jwt as pyjwt

from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers import replies
from chatauth.providers.base import (
    BaseProvider,
    Revocation,
    UserOperation,
    error_from_response,
    no_requests,
)
from chatauth.settings import Setting, check_hmac_secret
from chatauth.tokens import ChatToken, utcnow

__all__ = ["MAX_TTL", "TwilioProvider"]

#: Twilio's ceiling on an Access Token's lifetime, in seconds (error 20157 beyond).
MAX_TTL = 86_400
#: The Conversations REST API root (the User resource lives under it).
DEFAULT_BASE_URL = "https://conversations.twilio.com/v1"
#: Twilio's error code for "the requested resource was not found".
USER_NOT_FOUND = 20404


def _twilio_code(response: httpx.Response) -> str | None:
    """Twilio's ``{"code": int, ...}`` error code as a string, or ``None`` for another body
    (read by the one reading layer: never raises)."""
    return replies.code(response, ("code",))


def _not_a_user_sid(uid: str) -> str | None:
    if re.fullmatch(r"US[0-9a-fA-F]{32}", uid):
        return "Twilio reserves identities shaped like a User SID (US + 32 hex digits)"
    return None


def _sid(prefix: str, name: str, doc: str, *, key: bool = False) -> Setting:
    """A required Twilio SID setting: ``prefix`` and 32 hex digits."""
    return Setting(
        name,
        doc,
        required=True,
        pattern=prefix + r"[0-9a-fA-F]{32}",
        shape=f"{prefix} followed by 32 hex digits",
        key=key,
    )


class TwilioProvider(BaseProvider):
    """Twilio Conversations Access Tokens (see the module docstring).

    Args:
        account_sid: ``AC...`` (the token's ``sub``).
        api_key_sid: ``SK...`` (the token's ``iss``).
        api_key_secret: the API key's secret (signs the token).
        service_sid: ``IS...``, the Conversations service of the chat grant.
        region: optional Twilio region, sent as the ``twr`` header.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` without the API key SID or secret,
            ``ERROR_CONFIG`` for a malformed SID.
    """

    name: ClassVar[str] = "twilio"
    revocation: ClassVar[Revocation] = "none"
    uid_rules = UIDRules(
        pattern=r"[^\s!*'();:@&=+$,/?%#\[\]]+",
        max_length=256,
        description="any characters but white space and ! * ' ( ) ; : @ & = + $ , / ? % # [ ]",
        extra_check=_not_a_user_sid,
    )
    settings_prefix = "twilio"
    settings_spec = (
        _sid("AC", "account_sid", "the account SID (the token's sub)"),
        _sid("SK", "api_key_sid", "the API key SID (the token's iss)", key=True),
        Setting(
            "api_key_secret", "the API key's secret (signs the token)", secret=True, required=True
        ),
        _sid("IS", "service_sid", "the Conversations service of the chat grant"),
        Setting("region", "a Twilio region such as ie1, sent as the twr header"),
        Setting(
            "base_url",
            "the Conversations REST root for the chat-user operations",
            kind="url",
            default=DEFAULT_BASE_URL,
        ),
    )

    def __init__(
        self,
        account_sid: str,
        api_key_sid: str,
        api_key_secret: str,
        service_sid: str,
        *,
        region: str | None = None,
        base_url: str | None = None,
    ) -> None:
        given = self._declared(
            account_sid=account_sid,
            api_key_sid=api_key_sid,
            api_key_secret=api_key_secret,
            service_sid=service_sid,
            region=region,
            base_url=base_url,
        )
        # An HS256 key; Twilio's API key secrets are 32 characters (RFC 7518 §3.2's minimum).
        check_hmac_secret(given["api_key_secret"], "HS256", "TWILIO_API_KEY_SECRET")
        self.account_sid: str = given["account_sid"]
        self.api_key_sid: str = given["api_key_sid"]
        self.service_sid: str = given["service_sid"]
        self.region: str | None = given["region"]
        self.base_url = str(given["base_url"]).rstrip("/")
        self._secret: str = given["api_key_secret"]

    def __repr__(self) -> str:
        return f"<TwilioProvider service_sid={self.service_sid!r}>"

    @staticmethod
    def ttl_seconds(ttl: timedelta) -> int:
        """``token_ttl`` as Twilio's ``ttl``: whole seconds, at least 1, at most 86,400."""
        return max(1, min(MAX_TTL, int(ttl.total_seconds())))

    def mint(self, identity: str, ttl: int, now: int) -> str:
        """The Access Token for ``identity``, valid from ``now`` (Unix seconds) for ``ttl``
        seconds; the same header and claims, in the same order, as the ``twilio`` helper."""
        headers: dict[str, Any] = {"cty": "twilio-fpa;v=1"}
        if self.region:
            headers["twr"] = self.region
        headers["typ"] = "JWT"
        headers["alg"] = "HS256"
        payload = {
            # The helper's "<key SID>-<now>" plus a random part: two tokens minted in the same
            # second (two app sessions) must still be told apart.
            "jti": f"{self.api_key_sid}-{now}-{secrets.token_hex(8)}",
            "grants": {"chat": {"service_sid": self.service_sid}, "identity": identity},
            "iss": self.api_key_sid,
            "exp": now + ttl,
            "nbf": now,
            "sub": self.account_sid,
        }
        return pyjwt.encode(payload, self._secret, algorithm="HS256", headers=headers)

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Mint an Access Token valid for ``min(ttl, 24 h)``; no request is made.

        Raises:
            InvalidUIDError: the identity breaks the rules.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        now = int(utcnow().timestamp())
        seconds = self.ttl_seconds(ttl)
        return no_requests(
            ChatToken(
                value=self.mint(uid, seconds, now),
                uid=uid,
                provider=self.name,
                issued_at=datetime.fromtimestamp(now, timezone.utc),
                expires_at=datetime.fromtimestamp(now + seconds, timezone.utc),
            )
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Nothing to do: Twilio cannot revoke one Access Token (it dies at ``exp``)."""
        return no_requests(None)

    def client_config(self) -> dict[str, str]:
        """``{"region"}`` when a region is set, else ``{}``: ``new Client(token)`` needs only
        the token."""
        return {"region": self.region} if self.region else {}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "erase"})

    def _user_request(
        self, method: str, identity: str, form: Mapping[str, str] | None = None
    ) -> httpx.Request:
        request = httpx.Request(
            method,
            f"{self.base_url}/Users/{urllib.parse.quote(identity, safe='')}",
            data=dict(form) if form is not None else None,
            headers={"Accept": "application/json"},
        )
        # httpx's Basic scheme writes the header: no local of this frame holds the secret.
        return next(httpx.BasicAuth(self.api_key_sid, self._secret).auth_flow(request))

    def _done(self, response: httpx.Response) -> None:
        if response.status_code in (200, 204) or _twilio_code(response) == str(USER_NOT_FOUND):
            return None
        raise error_from_response(self.name, response, _twilio_code(response))

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """``POST /v1/Users/{Identity}`` form ``FriendlyName`` (Conversations "User resource":
        update a User; the path takes the SID or the identity,
        https://www.twilio.com/docs/conversations/api/user-resource). Twilio keeps no avatar
        field (``Attributes`` is the app's own JSON and is left alone). A user Twilio does not
        know (20404: it never connected) is left alone.

        Raises:
            ProviderError: Twilio refused (its numeric ``code``).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        response = yield self._user_request("POST", uid, {"FriendlyName": identity.name or uid})
        return self._done(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused: the Conversations User resource has no active/inactive state.

        Raises:
            UnsupportedOperationError: always (``ERROR_UNSUPPORTED_OPERATION``).
        """
        raise self.unsupported(
            "deactivate",
            "a Conversations User has no active state (erase deletes it; tokens die at exp).",
        )

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /v1/Users/{Identity}`` -> 204 (Conversations "User resource": delete a
        User). A user Twilio does not know (20404) counts as done. Access tokens already
        minted stay valid until ``exp`` (Twilio cannot revoke one).

        Raises:
            ProviderError: Twilio refused (its numeric ``code``).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        response = yield self._user_request("DELETE", uid)
        return self._done(response)
