"""CometChat (REST API v3) and CometChat Calls providers: a per-session auth token.

References: CometChat REST API v3 (https://www.cometchat.com/docs/rest-api, OpenAPI
``chat-apis.json``: "Users -> Create", "Users -> Get", "Auth Tokens -> Create / Delete"), the
error guide (https://www.cometchat.com/docs/articles/error-guide) and the client SDKs'
authentication guides ("Login using Auth Token"; Calls SDK "Login with Auth Token").

Flow of :meth:`CometChatProvider.issue`:

1. ``GET /users/{uid}``; ``404 ERR_UID_NOT_FOUND`` -> ``POST /users`` ``{uid, name, avatar?,
   withAuthToken: true}`` (one call creates the user and its first token). A concurrent
   creation answers ``ERR_UID_ALREADY_EXISTS``, which counts as success (get-or-create is
   race-safe): the flow then creates the token as for an existing user.
2. ``POST /users/{uid}/auth_tokens`` ``{"force": true}``: a *new* token for this app session,
   so that deleting it at logout leaves the user's other devices logged in.

:meth:`CometChatProvider.revoke` is ``DELETE /users/{uid}/auth_tokens/{authToken}`` (the token
is destroyed permanently); a token or user CometChat no longer knows counts as revoked.
CometChat auth tokens never expire (``expires_at`` is ``None``): chatauth re-issues them after
``token_ttl`` and deletes the replaced one.

Every call sends ``apikey: <REST API key>`` (the full-access key; the Auth Key may only create
users and tokens and is for development), ``Accept`` and ``Content-Type: application/json``.
The provider branches on CometChat's ``error.code``, never on undocumented statuses.

UIDs: 1-100 characters of ``a-z 0-9 _ -``. CometChat lower-cases UIDs on create, so a UID with
upper case letters would silently become another user's: chatauth refuses it
(``ERROR_INVALID_UID``) instead of colliding.

Settings: ``COMETCHAT_*``, declared once in :attr:`CometChatProvider.settings_spec` (the
class docstring's table is generated from it).

:class:`CometChatCallsProvider` (``PROVIDER = "cometchat_calls"``) is the same flow for apps
whose front end uses the CometChat Calls SDK (v5): it logs in with the same UID and auth token
(``CometChatCalls.login(authToken)``), and its client config carries what
``CallAppSettings`` needs (app id and region). Apps that use both the Chat and Calls SDKs
should use ``"cometchat"`` and hand the one token to both SDKs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import httpx

from chatauth.errors import InvalidTokenError
from chatauth.http import REDACT, Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers import replies
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.rest import RESTProvider
from chatauth.settings import Setting
from chatauth.tokens import ChatToken, utcnow

__all__ = ["CometChatCallsProvider", "CometChatProvider"]

#: The documented data regions (REST API v3 "Authentication": the host name's region).
REGIONS = frozenset({"us", "eu", "in"})
#: Documented limits of the create-user call.
MAX_NAME = 100
MAX_AVATAR = 3000
#: The UID ``check()`` looks up: any answer but a key error proves the key works.
_PROBE_UID = "chatauth-check"


class CometChatProvider(RESTProvider):
    """Auth tokens from the CometChat REST API v3 (see the module docstring).

    Args:
        app_id: the CometChat app id (public).
        api_key: the REST API key (secret; never in reprs, messages or client config).
        region: ``"us"``, ``"eu"`` or ``"in"``.
        base_url: the REST root, for an emulator or a dedicated host; default the documented
            ``https://{app_id}.api-{region}.cometchat.io/v3``.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` without an API key, ``ERROR_CONFIG``
            for a missing app id, a malformed region or base URL.
    """

    name: ClassVar[str] = "cometchat"
    revocation: ClassVar[Revocation] = "token"
    uid_rules = UIDRules(
        pattern=r"[a-z0-9_\-]+",
        max_length=100,
        folds_case=True,
        description="a-z 0-9 _ - (lower case)",
    )
    #: ``{"error": {"code": "ERR_..."}}``
    error_path = ("error", "code")
    settings_prefix = "cometchat"
    settings_spec = (
        Setting(
            "app_id",
            "the app id from the CometChat dashboard",
            required=True,
            pattern=r"[A-Za-z0-9_\-]+",
            shape="the app id from the CometChat dashboard",
        ),
        Setting(
            "api_key",
            "the REST API key (not the Auth Key)",
            secret=True,
            required=True,
        ),
        Setting(
            "region",
            "the app's data region",
            default="us",
            choices=tuple(sorted(REGIONS)),
            lower=True,
        ),
        Setting(
            "base_url",
            "REST API root; default https://{app_id}.api-{region}.cometchat.io/v3",
            kind="url",
        ),
    )

    def __init__(
        self,
        app_id: str,
        api_key: str,
        *,
        region: str | None = None,
        base_url: str | None = None,
    ) -> None:
        given = self._declared(app_id=app_id, api_key=api_key, region=region, base_url=base_url)
        self.app_id: str = given["app_id"]
        self.region: str = given["region"]
        self._api_key: str = given["api_key"]
        self.base_url = str(
            given["base_url"] or f"https://{self.app_id}.api-{self.region}.cometchat.io/v3"
        ).rstrip("/")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} app_id={self.app_id!r} region={self.region!r}>"

    # -- requests ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"apikey": self._api_key}

    def _user_body(self, identity: ChatIdentity) -> dict[str, Any]:
        body: dict[str, Any] = {
            "uid": identity.uid,
            # name is required by CometChat; the UID stands in for a user without one.
            "name": (identity.name or identity.uid)[:MAX_NAME],
        }
        if identity.avatar and len(identity.avatar) <= MAX_AVATAR:
            body["avatar"] = identity.avatar
        return body

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Ensure the user exists and create a new auth token for it.

        ``ttl`` is not sent: CometChat tokens never expire, so ``expires_at`` is ``None`` and
        the service re-issues after ``token_ttl`` (``refresh_at``).

        Raises:
            InvalidUIDError: the UID breaks CometChat's rules (checked before any request).
            ProviderError: CometChat refused a call (its ``error.code``, e.g.
                ``AUTH_ERR_APIKEY_NOT_FOUND``).
            InvalidTokenError: CometChat answered a blank token or one with white space.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        quoted = self._quote(uid)
        response = yield self._request("GET", f"/users/{quoted}")
        if response.status_code != 200:
            if self._error_code(response) != "ERR_UID_NOT_FOUND":
                raise self._refused(response)
            response = yield self._request(
                "POST", "/users", {**self._user_body(identity), "withAuthToken": True}
            )
            if response.status_code == 200:
                if replies.optional(response, ("data", "authToken"), str):
                    return (yield from self._minted(uid, response))
            elif self._error_code(response) != "ERR_UID_ALREADY_EXISTS":
                raise self._refused(response)
            # Created by a concurrent login (or without a token): create the token below.
        # force: a fresh token per app session, never one another device holds.
        response = yield self._request("POST", f"/users/{quoted}/auth_tokens", {"force": True})
        return (yield from self._minted(uid, self._expect(response)))

    def _minted(self, uid: str, response: httpx.Response) -> Flow[ChatToken]:
        """The token CometChat just created (``data.authToken``), checked; one chatauth
        cannot hand out (white space in it) is deleted at CometChat before raising, since
        CometChat tokens never expire and nobody else would ever delete it."""
        try:
            value = self._token(response, "data", "authToken")
        except InvalidTokenError as exc:
            unusable = replies.optional(response, ("data", "authToken"), str)
            if unusable and unusable.strip():
                deleted: httpx.Response | None
                try:
                    deleted = yield self._delete_token(uid, unusable)
                except Exception:
                    deleted = None
                if deleted is None or (
                    deleted.status_code != 200
                    and self._error_code(deleted)
                    not in ("ERR_AUTH_TOKEN_NOT_FOUND", "ERR_UID_NOT_FOUND")
                ):
                    # Not confirmed: reported in the error (no token object can hold this
                    # value), logged by the service; CometChat keeps at most 100 per user.
                    exc.message += " Deleting it at CometChat failed."
            raise
        return ChatToken(
            value=value, uid=uid, provider=self.name, issued_at=utcnow(), expires_at=None
        )

    def _delete_token(self, uid: str, value: str) -> httpx.Request:
        request = self._request(
            "DELETE", f"/users/{self._quote(uid)}/auth_tokens/{self._quote(value)}"
        )
        request.extensions[REDACT] = (value,)  # the token is in the URL: keep it out of logs
        return request

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Delete the auth token at CometChat (``DELETE /users/{uid}/auth_tokens/{token}``).

        Raises:
            ProviderError: CometChat refused for another reason than "unknown token/user".
        """
        response = yield self._delete_token(token.uid, token.value)
        if response.status_code == 200:
            return None
        if self._error_code(response) in ("ERR_AUTH_TOKEN_NOT_FOUND", "ERR_UID_NOT_FOUND"):
            return None  # already gone: that is what revoking wanted
        raise self._refused(response)

    def check(self) -> Flow[dict[str, str]]:
        """Prove the REST key works: look up a probe UID (found or ``ERR_UID_NOT_FOUND``).

        Raises:
            ProviderError: the key is unknown or lacks the REST scope.
        """
        response = yield self._request("GET", f"/users/{_PROBE_UID}")
        if response.status_code != 200 and self._error_code(response) != "ERR_UID_NOT_FOUND":
            raise self._refused(response)
        return {"provider": self.name, "app_id": self.app_id, "region": self.region}

    def client_config(self) -> dict[str, str]:
        """``{"app_id", "region"}``: what ``CometChat.init`` (``AppSettingsBuilder``) needs."""
        return {"app_id": self.app_id, "region": self.region}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "deactivate", "erase"})

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """``PUT /users/{uid}`` ``{name, avatar}`` (REST API v3 "Users -> Update",
        https://www.cometchat.com/docs/rest-api/users/update); without an avatar,
        ``"unset": ["avatar"]`` removes the old one. An unknown or deactivated user
        (``ERR_UID_NOT_FOUND``) is left alone: it gets the profile when it is created.

        Raises:
            ProviderError: CometChat refused (its ``error.code``).
        """
        body = self._user_body(identity)
        del body["uid"]
        if "avatar" not in body:
            body["unset"] = ["avatar"]
        response = yield self._request("PUT", f"/users/{self._quote(identity.uid)}", body)
        if response.status_code == 200 or self._error_code(response) == "ERR_UID_NOT_FOUND":
            return None
        raise self._refused(response)

    def _delete_user(self, identity: ChatIdentity, *, permanent: bool) -> Flow[None]:
        response = yield self._request(
            "DELETE", f"/users/{self._quote(identity.uid)}", {"permanent": permanent}
        )
        if response.status_code == 200 or self._error_code(response) == "ERR_UID_NOT_FOUND":
            return None
        raise self._refused(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /users/{uid}`` ``{"permanent": false}``: "by default, deleting a user only
        deactivates them" (REST API v3 "Users -> Delete",
        https://www.cometchat.com/docs/rest-api/users/delete). A user already gone counts as
        done.

        Raises:
            ProviderError: CometChat refused (its ``error.code``).
        """
        return self._delete_user(identity, permanent=False)

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /users/{uid}`` ``{"permanent": true}``: deletes the user "along with all
        their messages, conversations, and associated data", irreversibly (REST API v3
        "Users -> Delete"). A user already gone counts as done.

        Raises:
            ProviderError: CometChat refused (its ``error.code``).
        """
        return self._delete_user(identity, permanent=True)


class CometChatCallsProvider(CometChatProvider):
    """CometChat Calls SDK (v5) variant: the same UID and auth token, Calls client config.

    The Calls SDK logs in with the Chat auth token (``CometChatCalls.login(authToken)``) and
    checks locally, before any request, what chatauth checks server-side with the same codes:
    empty UID ``ERROR_INVALID_UID``, UID with a space ``ERROR_UID_WITH_SPACE``, missing key
    ``ERROR_API_KEY_NOT_FOUND``, empty token ``ERROR_BLANK_AUTHTOKEN``, token with a space
    ``ERROR_AUTHTOKEN_WITH_SPACE``. Revocation is the Chat token delete (the Calls SDK's
    ``logout()`` only clears its local session).
    """

    name: ClassVar[str] = "cometchat_calls"

    def client_config(self) -> dict[str, str]:
        """``{"app_id", "region", "sdk": "calls"}``: ``CallAppSettingsBuilder`` takes the app
        id and region; ``sdk`` tells the front end which SDK's ``login`` to call."""
        return {"app_id": self.app_id, "region": self.region, "sdk": "calls"}
