"""Sendbird Chat provider: a session token from the Platform API v3.

References: Sendbird Chat Platform API v3 (https://sendbird.com/docs/chat/platform-api/v3/):
"Create a user", "Issue a session token", "Revoke all session tokens", "Error codes".

Flow of :meth:`SendbirdProvider.issue`:

1. ``POST /v3/users/{user_id}/token`` ``{"expires_at": <Unix milliseconds>}`` -> ``{token,
   expires_at}``; ``expires_at`` is now + ``token_ttl``.
2. Only when Sendbird answers code 400201 (user not found): ``POST /v3/users`` ``{user_id,
   nickname, profile_url}``; code 400202 (already exists, a concurrent first login) counts as
   success; then step 1 again.

:meth:`SendbirdProvider.revoke` is ``DELETE /v3/users/{user_id}/token``, which revokes **all**
session tokens of the user (``revocation = "user"``): ending one app session logs the user out
of chat everywhere, and chatauth drops the user's other stored tokens so their devices get a
fresh one next time.

Every call sends ``Api-Token`` (master or secondary token) and ``Content-Type:
application/json; charset=utf8``; path parameters are URL-encoded. Errors are ``{"error": true,
"code": int, "message"}``; the provider branches on ``code`` only.

Settings: ``SENDBIRD_*``, declared once in :attr:`SendbirdProvider.settings_spec` (the class
docstring's table is generated from it).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import ClassVar

import httpx

from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers import replies
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.rest import RESTProvider
from chatauth.settings import Setting
from chatauth.tokens import ChatToken, utcnow

__all__ = ["SendbirdProvider"]

USER_NOT_FOUND = 400201
USER_EXISTS = 400202
MAX_NICKNAME = 80
MAX_PROFILE_URL = 2048
#: An ``expires_at`` past year 9999 (Unix ms) cannot be a date: the asked one is kept.
MAX_EXPIRES_MS = 253_402_300_799_000


class SendbirdProvider(RESTProvider):
    """Sendbird session tokens (see the module docstring).

    Args:
        application_id: the Sendbird application id (public; the front end's
            ``SendbirdChat.init({appId})`` needs it).
        api_token: the master or a secondary API token (secret).
        base_url: REST root, default ``https://api-{application_id}.sendbird.com/v3``.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` without an API token,
            ``ERROR_CONFIG`` for a missing application id or a malformed base URL.
    """

    name: ClassVar[str] = "sendbird"
    revocation: ClassVar[Revocation] = "user"
    # user_id: at most 80 characters; kept to URL- and header-safe characters.
    uid_rules = UIDRules(
        pattern=r"[A-Za-z0-9._@+=:\-]+",
        max_length=80,
        description="letters, digits and . _ @ + = : -",
    )
    #: ``{"error": true, "code": 400201, "message"}``
    error_path = ("code",)
    content_type = "application/json; charset=utf8"
    settings_prefix = "sendbird"
    settings_spec = (
        Setting(
            "application_id",
            "the application id (public: SendbirdChat.init({appId}))",
            required=True,
            pattern=r"[A-Za-z0-9\-]+",
            shape="the application id from the dashboard",
        ),
        Setting("api_token", "the master or a secondary API token", secret=True, required=True),
        Setting(
            "base_url",
            "REST API root; default https://api-{application_id}.sendbird.com/v3",
            kind="url",
        ),
    )

    def __init__(self, application_id: str, api_token: str, *, base_url: str | None = None) -> None:
        given = self._declared(
            application_id=application_id, api_token=api_token, base_url=base_url
        )
        self.application_id: str = given["application_id"]
        self._api_token: str = given["api_token"]
        self.base_url = str(
            given["base_url"] or f"https://api-{self.application_id}.sendbird.com/v3"
        ).rstrip("/")

    def __repr__(self) -> str:
        return f"<SendbirdProvider application_id={self.application_id!r}>"

    # -- requests ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Api-Token": self._api_token}

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Issue a session token expiring ``ttl`` from now, creating the user if missing.

        ``expires_at`` is sent in Unix **milliseconds**, as Sendbird expects.

        Raises:
            InvalidUIDError: the UID breaks the rules (before any request).
            ProviderError: Sendbird refused (its numeric code as a string, e.g.
                ``"400401"`` for a bad API token).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        path = f"/users/{self._quote(uid)}/token"
        issued = utcnow()
        expires_ms = int((issued + ttl).timestamp() * 1000)
        response = yield self._request("POST", path, {"expires_at": expires_ms})
        if self._error_code(response) == str(USER_NOT_FOUND):
            avatar = (
                identity.avatar
                if identity.avatar and len(identity.avatar) <= MAX_PROFILE_URL
                else ""
            )
            response = yield self._request(
                "POST",
                "/users",
                {
                    "user_id": uid,
                    "nickname": (identity.name or uid)[:MAX_NICKNAME],
                    "profile_url": avatar,
                },
            )
            if response.status_code != 200 and self._error_code(response) != str(USER_EXISTS):
                raise self._refused(response)
            response = yield self._request("POST", path, {"expires_at": expires_ms})
        value = self._token(self._expect(response), "token")
        # Sendbird's own expiry when it gives a plausible one (Unix ms), else the one asked.
        answered = replies.optional(response, ("expires_at",), int)
        if answered is None or not 0 < answered < MAX_EXPIRES_MS:
            answered = expires_ms
        expires_at = datetime.fromtimestamp(answered / 1000, timezone.utc)
        return ChatToken(
            value=value,
            uid=uid,
            provider=self.name,
            issued_at=issued,
            expires_at=expires_at,
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Revoke every session token of ``token.uid`` (``DELETE /users/{user_id}/token``).

        Raises:
            ProviderError: Sendbird refused for another reason than "user not found".
        """
        response = yield self._request("DELETE", f"/users/{self._quote(token.uid)}/token")
        if response.status_code == 200 or self._error_code(response) == str(USER_NOT_FOUND):
            return None
        raise self._refused(response)

    def check(self) -> Flow[dict[str, str]]:
        """Prove the API token works: view a probe user (found or 400201 not found).

        Raises:
            ProviderError: the API token is refused (400401).
        """
        response = yield self._request("GET", "/users/chatauth-check")
        if response.status_code != 200 and self._error_code(response) != str(USER_NOT_FOUND):
            raise self._refused(response)
        return {"provider": self.name, "application_id": self.application_id}

    def client_config(self) -> dict[str, str]:
        """``{"app_id"}``: what ``SendbirdChat.init({appId})`` needs."""
        return {"app_id": self.application_id}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "deactivate", "erase"})

    def _done(self, response: httpx.Response) -> None:
        if response.status_code == 200 or self._error_code(response) == str(USER_NOT_FOUND):
            return None
        raise self._refused(response)

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """``PUT /v3/users/{user_id}`` ``{nickname, profile_url}`` (Platform API "Update a
        user", https://sendbird.com/docs/chat/v3/platform-api/guides/user#2-update-a-user);
        ``profile_url`` ``""`` clears the avatar. A user Sendbird does not know (400201) is left
        alone.

        Raises:
            ProviderError: Sendbird refused (its numeric code).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        avatar = identity.avatar if identity.avatar and len(identity.avatar) <= 2048 else ""
        body = {"nickname": (identity.name or uid)[:MAX_NICKNAME], "profile_url": avatar}
        response = yield self._request("PUT", f"/users/{self._quote(uid)}", body)
        return self._done(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """``PUT /v3/users/{user_id}`` ``{"is_active": false, "leave_all_when_deactivated":
        true}`` (Platform API "Update a user": "you can also deactivate or reactivate a user";
        a deactivated user cannot connect). A user Sendbird does not know counts as done.

        Raises:
            ProviderError: Sendbird refused (its numeric code).
        """
        body = {"is_active": False, "leave_all_when_deactivated": True}
        response = yield self._request("PUT", f"/users/{self._quote(identity.uid)}", body)
        return self._done(response)

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /v3/users/{user_id}`` (Platform API "Delete a user"). A user Sendbird does
        not know counts as done.

        Raises:
            ProviderError: Sendbird refused (its numeric code).
        """
        response = yield self._request("DELETE", f"/users/{self._quote(identity.uid)}")
        return self._done(response)
