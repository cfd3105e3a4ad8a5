"""Stream Chat provider: a user token minted locally, the user kept in sync over REST.

References: the official server SDK ``GetStream/stream-chat-python``
(``stream_chat/base/client.py``: ``create_token``, ``update_users_partial``,
``upsert_users``, ``revoke_user_token``) and the docs pages "Tokens & Authentication" and
"API Error Codes" (https://getstream.io/chat/docs/).

User token: HS256 JWT signed with the API secret over ``{"jti": <random>, "user_id": uid,
"exp": <Unix seconds>, "iat": <Unix seconds>}`` -- built exactly as the SDK's
``create_token(uid, exp=..., iat=..., jti=...)`` builds it, so both produce the same string for
the same inputs (a test uses the SDK as oracle). The random ``jti`` (an extra claim, which the
SDK passes through) keeps the tokens of two app sessions minted in the same second apart.
``exp`` is ``iat + token_ttl`` (absolute Unix seconds); ``iat`` is always set because
revocation depends on it.

Keeping the user: ``GET /users?payload=`` (the SDK's ``query_users`` with the filter
``{"id": {"$eq": uid}}``, limit 1) asks whether it exists -- the documented question, answered
by an empty list rather than by an error code. A known user gets ``PATCH /users`` (partial
update: ``set`` name and image, other fields untouched; skipped when there is nothing to set),
a new one ``POST /users`` (upsert). Upsert is idempotent, so two first logins racing both
succeed. Server calls carry ``?api_key=``,
``Stream-Auth-Type: jwt`` and ``Authorization: <server JWT>`` (HS256 over ``{"server":
true}``, no "Bearer").

Revocation is **user-wide** (``revocation = "user"``): ``PATCH /users`` with
``set.revoke_tokens_issued_before`` makes Stream refuse every token of that user issued
earlier. Ending one app session therefore logs the user out of chat on every device; chatauth
drops all of the user's stored tokens so the other devices get a fresh token next time.
The cut-off is whole seconds: ``max(now, newest iat + 1 s)`` truncated, so the revoked token
always dies and a token minted for a new login in a later second lives.

Settings: ``STREAM_*``, declared once in :attr:`StreamProvider.settings_spec` (the class
docstring's table is generated from it).
"""

from __future__ import annotations

import json
import math
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

import jwt as pyjwt

from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.hmacjwt import HMACSigner
from chatauth.providers.rest import RESTProvider
from chatauth.settings import Setting, check_hmac_secret
from chatauth.tokens import ChatToken, utcnow

__all__ = ["StreamProvider", "revocation_cutoff"]

DEFAULT_BASE_URL = "https://chat.stream-io-api.com"
#: Stream's error code for "user not found" (HTTP 404): a revoke for a user Stream no longer
#: has is done (which status and code a partial update of a deleted user gets is undocumented).
NOT_FOUND = 16


def _query_one(uid: str) -> str:
    """The ``payload`` of ``query_users({"id": {"$eq": uid}}, limit=1)``, as the SDK writes
    it (options first, then the filter and the normalised, empty sort)."""
    return json.dumps({"limit": 1, "filter_conditions": {"id": {"$eq": uid}}, "sort": []})


def revocation_cutoff(newest_issued_at: datetime, now: datetime) -> datetime:
    """The ``revoke_tokens_issued_before`` instant (whole seconds, UTC) for a logout at ``now``.

    Stream compares it with ``iat`` (whole seconds): a token dies when ``iat < cut-off``.
    ``newest iat + 1 s`` guarantees the revoked token dies even when it was minted this very
    second; not going past ``now`` lets a token minted for a new login in a later second live.
    """
    newest = math.floor(newest_issued_at.timestamp()) + 1
    return datetime.fromtimestamp(max(newest, math.floor(now.timestamp())), timezone.utc)


class StreamProvider(RESTProvider):
    """Stream Chat user tokens (see the module docstring).

    Args:
        api_key: the app's API key (public; the front end's ``StreamChat.getInstance`` needs
            it).
        api_secret: the API secret (signs user and server tokens; never leaves the server).
        base_url: REST root, default ``https://chat.stream-io-api.com``.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` for a missing key or secret,
            ``ERROR_CONFIG`` for a malformed base URL.
    """

    name: ClassVar[str] = "stream"
    revocation: ClassVar[Revocation] = "user"
    # Stream's documented set; the max length is not documented (the emulator uses 255).
    uid_rules = UIDRules(
        pattern=r"[a-zA-Z0-9@_\-]+", max_length=255, description="letters, digits, @ _ -"
    )
    #: ``{"code": 16, "message", "StatusCode", ...}``
    error_path = ("code",)
    settings_prefix = "stream"
    settings_spec = (
        Setting(
            "api_key",
            "the app's API key (public: StreamChat.getInstance(apiKey))",
            key=True,
            required=True,
        ),
        Setting(
            "api_secret",
            "the API secret (signs user and server tokens)",
            secret=True,
            required=True,
        ),
        Setting("base_url", "REST API root", kind="url", default=DEFAULT_BASE_URL),
    )

    def __init__(self, api_key: str, api_secret: str, *, base_url: str | None = None) -> None:
        given = self._declared(api_key=api_key, api_secret=api_secret, base_url=base_url)
        # Stream signs HS256 with the secret: RFC 7518's 32 bytes (Stream's own are longer).
        check_hmac_secret(given["api_secret"], "HS256", "STREAM_API_SECRET")
        self.base_url = str(given["base_url"]).rstrip("/")
        self.api_key: str = given["api_key"]
        self._api_secret: str = given["api_secret"]
        # The SDK's server token: no exp/iat, so it can be built once.
        self._server_token = pyjwt.encode({"server": True}, self._api_secret, algorithm="HS256")
        # The user tokens, byte for byte as stream_chat's create_token writes them.
        self._user_signer = HMACSigner("HS256", self._api_secret)

    def __repr__(self) -> str:
        return f"<StreamProvider api_key={self.api_key!r}>"

    # -- tokens ------------------------------------------------------------------------------
    def create_token(
        self, user_id: str, exp: int | None = None, iat: int | None = None, **claims: Any
    ) -> str:
        """The user token, built as ``stream_chat``'s ``create_token`` builds it.

        Args:
            user_id: the Stream user id.
            exp, iat: Unix seconds, or ``None`` to leave the claim out.
            claims: extra claims (``user_id`` always wins).
        """
        payload: dict[str, Any] = {**claims, "user_id": user_id}
        if exp:
            payload["exp"] = exp
        if iat:
            payload["iat"] = iat
        return self._user_signer.sign(payload)

    # -- requests ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Stream-Auth-Type": "jwt", "Authorization": self._server_token}

    def _params(self) -> dict[str, str]:
        return {"api_key": self.api_key}

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Update (or create) the Stream user, then mint its token.

        ``exp`` = ``iat`` + ``ttl`` in absolute Unix seconds.

        Raises:
            InvalidUIDError: the UID breaks Stream's rules (before any request).
            ProviderError: Stream refused (its numeric ``code`` as a string, e.g. ``"2"`` for
                a bad API key, ``"43"`` for a bad signature).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        fields: dict[str, Any] = {}
        if identity.name:
            fields["name"] = identity.name
        if identity.avatar:
            fields["image"] = identity.avatar
        response = yield self._request("GET", "/users", params={"payload": _query_one(uid)})
        found = self._field(self._expect(response), "users", kind=list)
        if not any(isinstance(user, dict) and user.get("id") == uid for user in found):
            response = yield self._request(
                "POST", "/users", {"users": {uid: {"id": uid, **fields}}}
            )
            self._expect(response, 200, 201)
        elif fields:
            response = yield self._request(
                "PATCH", "/users", {"users": [{"id": uid, "set": fields}]}
            )
            self._expect(response)
        now = utcnow().replace(microsecond=0)
        iat = int(now.timestamp())
        exp = iat + max(1, int(ttl.total_seconds()))
        return ChatToken(
            # jti: tokens of two app sessions minted in the same second still differ.
            value=self.create_token(uid, exp=exp, iat=iat, jti=secrets.token_urlsafe(12)),
            uid=uid,
            provider=self.name,
            issued_at=now,
            expires_at=datetime.fromtimestamp(exp, timezone.utc),
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Refuse every token of ``token.uid`` issued before the cut-off (user-wide).

        Raises:
            ProviderError: Stream refused for another reason than "user not found".
        """
        cutoff = revocation_cutoff(token.issued_at, utcnow())
        response = yield self._request(
            "PATCH",
            "/users",
            {
                "users": [
                    {
                        "id": token.uid,
                        "set": {
                            "revoke_tokens_issued_before": cutoff.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        },
                    }
                ]
            },
        )
        if response.status_code == 200 or self._error_code(response) == str(NOT_FOUND):
            return None
        raise self._refused(response)

    def client_config(self) -> dict[str, str]:
        """``{"api_key"}``: what ``StreamChat.getInstance(apiKey)`` needs."""
        return {"api_key": self.api_key}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "deactivate", "erase"})

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """Partial update, ``PATCH /users`` ``{"users": [{"id", "set": {name, image}}]}``
        (stream-chat-python ``update_users_partial``; "Managing Users", partial updates);
        without an avatar, ``"unset": ["image"]``. A user Stream does not know (code 16) is
        left alone.

        Raises:
            ProviderError: Stream refused (its numeric ``code``).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        change: dict[str, Any] = {"id": uid, "set": {"name": identity.name or uid}}
        if identity.avatar:
            change["set"]["image"] = identity.avatar
        else:
            change["unset"] = ["image"]
        response = yield self._request("PATCH", "/users", {"users": [change]})
        if response.status_code == 200 or self._error_code(response) == str(NOT_FOUND):
            return None
        raise self._refused(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """``POST /users/{id}/deactivate`` (stream-chat-python ``deactivate_user``):
        "deactivated users cannot connect to Stream Chat or send/receive messages"; they can be
        reactivated. A user Stream does not know counts as done.

        Raises:
            ProviderError: Stream refused (its numeric ``code``).
        """
        quoted = self._quote(identity.uid)
        response = yield self._request("POST", f"/users/{quoted}/deactivate", {})
        if response.status_code == 200 or self._error_code(response) == str(NOT_FOUND):
            return None
        raise self._refused(response)

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /users/{id}?hard_delete=true&mark_messages_deleted=true``
        (stream-chat-python ``delete_user(user_id, **options)``; stream-cli
        ``delete-user --hard-delete``: "hard deletes everything related to this user"). A
        user Stream does not know counts as done.

        Raises:
            ProviderError: Stream refused (its numeric ``code``).
        """
        response = yield self._request(
            "DELETE",
            f"/users/{self._quote(identity.uid)}",
            params={"hard_delete": "true", "mark_messages_deleted": "true"},
        )
        if response.status_code == 200 or self._error_code(response) == str(NOT_FOUND):
            return None
        raise self._refused(response)
