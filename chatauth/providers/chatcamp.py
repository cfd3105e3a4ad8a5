"""ChatCamp provider: the user's access token for ``connect(uid, accessToken)``.

ChatCamp publishes no server API reference. This follows the only vendor-written server code
found, the vendor's WordPress plugin "iFlyChat" 4.7.2 (``iflychat.php``: ``_iflychat_get_auth``,
``iflychat_chatcamp_process_user_data``, ``iflychat_get_hash_session``), marked [src], and the
ChatCamp authentication guides (create the user with an access token on your server, then
``connect(uid, accessToken)`` on the client; ``disconnect()`` only closes the socket).
What neither shows is marked [inf]; docs/providers.md lists those points.

Every call [src]: ``POST https://api.chatcamp.io/api/2.0/<method>`` with a JSON body and the
header ``x-api-key`` (no app id header); any status but 200 is an error, whose body is not
read (the plugin reads none).

Flow of :meth:`ChatCampProvider.issue`:

1. ``users.get`` ``{id}`` -> 200: the user exists; 404: it does not [src].
2. A new access token, generated here as the plugin does [src] (43 URL-safe characters:
   256 random bits, unpadded base64url), is bound with ``users.update`` (user exists) or
   ``users.create`` (it does not) ``{id, display_name, avatar_url?, check_access_token: true,
   access_token}`` [src]; the answer's top-level ``access_token`` is the token [src].
3. A ``users.create`` refused because a concurrent first login created the user meanwhile
   [inf: the answer for a duplicate is unknown] is followed by ``users.get``: when the user is
   there now, ``users.update`` binds the token; otherwise the create's refusal is raised.

A ChatCamp user has **one** access token [inf]: issuing one for a second app session of the
same user replaces the first's, and revocation is user-wide (``revocation = "user"``):
:meth:`ChatCampProvider.revoke` binds a fresh random token nobody holds (``users.update``),
so the handed-out one stops working for new connections [inf]. Whether ChatCamp closes an
already connected socket is unknown: logout is best effort.

Settings: ``CHATCAMP_*``, declared once in :attr:`ChatCampProvider.settings_spec` (the class
docstring's table is generated from it).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.rest import RESTProvider
from chatauth.settings import Setting
from chatauth.tokens import ChatToken, utcnow

__all__ = ["ChatCampProvider", "new_access_token"]

DEFAULT_BASE_URL = "https://api.chatcamp.io/api/2.0"


def new_access_token() -> str:
    """A fresh access token shaped as the plugin's ``iflychat_get_hash_session`` shapes it:
    256 bits as unpadded base64url, 43 characters [src]."""
    return secrets.token_urlsafe(32)


class ChatCampProvider(RESTProvider):
    """ChatCamp access tokens (see the module docstring).

    Args:
        app_id: the ChatCamp app id (public; ``new ChatCamp({appId})`` needs it; never sent
            to the REST API [src]).
        api_key: the server API key (secret), sent as ``x-api-key``.
        base_url: REST root, default ``https://api.chatcamp.io/api/2.0``.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` without an API key, ``ERROR_CONFIG``
            for a missing app id or a malformed base URL.
    """

    name: ClassVar[str] = "chatcamp"
    revocation: ClassVar[Revocation] = "user"
    # "Any unique string from your user database"; kept URL- and JSON-friendly.
    uid_rules = UIDRules(
        pattern=r"[A-Za-z0-9._@+=:\-]+",
        max_length=255,
        description="letters, digits and . _ @ + = : -",
    )
    settings_prefix = "chatcamp"
    settings_spec = (
        Setting("app_id", "the app id (public: the client's appId)", required=True),
        Setting("api_key", "the server API key, sent as x-api-key", secret=True, required=True),
        Setting("base_url", "REST API root", kind="url", default=DEFAULT_BASE_URL),
    )

    def __init__(self, app_id: str, api_key: str, *, base_url: str | None = None) -> None:
        given = self._declared(app_id=app_id, api_key=api_key, base_url=base_url)
        self.app_id: str = given["app_id"]
        self._api_key: str = given["api_key"]
        self.base_url = str(given["base_url"]).rstrip("/")

    def __repr__(self) -> str:
        return f"<ChatCampProvider app_id={self.app_id!r}>"

    # -- requests ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key}

    def _call(self, method: str, body: Mapping[str, Any]) -> httpx.Request:
        """``POST <base>/<method>`` with ``body`` as JSON [src]."""
        return self._request("POST", f"/{method}", body)

    @staticmethod
    def _binding(identity: ChatIdentity, uid: str) -> dict[str, Any]:
        """The create/update body binding a new token (as the plugin's
        ``iflychat_chatcamp_process_user_data``), the token not yet in it."""
        body: dict[str, Any] = {
            "id": uid,
            "display_name": identity.name or uid,
            "check_access_token": True,
        }
        if identity.avatar:
            body["avatar_url"] = identity.avatar
        return body

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Bind a new access token to the user, creating the user if missing.

        ``ttl`` is not sent (ChatCamp tokens have no known expiry): ``expires_at`` is ``None``
        and the service re-issues after ``token_ttl``.

        Raises:
            InvalidUIDError: the UID breaks the rules (before any request).
            ProviderError: ChatCamp refused (``HTTP_<status>``: its error bodies are unknown).
            InvalidTokenError: the answer carries no usable ``access_token``.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        body = self._binding(identity, uid)
        response = yield self._call("users.get", {"id": uid})
        if response.status_code == 404:
            response = yield self._call(
                "users.create", {**body, "access_token": new_access_token()}
            )
            if response.status_code != 200:
                created = response
                # A concurrent first login may have created the user: bind to it then.
                response = yield self._call("users.get", {"id": uid})
                if response.status_code != 200:
                    raise self._refused(created)
            else:
                return self._minted(uid, response)
        self._expect(response)
        response = yield self._call("users.update", {**body, "access_token": new_access_token()})
        return self._minted(uid, self._expect(response))

    def _minted(self, uid: str, response: httpx.Response) -> ChatToken:
        return ChatToken(
            value=self._token(response, "access_token"),
            uid=uid,
            provider=self.name,
            issued_at=utcnow(),
            expires_at=None,
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Bind a fresh token nobody holds to the user (``users.update``), so ``token`` stops
        working [inf]; an unknown user (404) counts as revoked.

        Raises:
            ProviderError: ChatCamp refused for another reason.
        """
        response = yield self._call(
            "users.update",
            {"id": token.uid, "check_access_token": True, "access_token": new_access_token()},
        )
        if response.status_code in (200, 404):
            return None
        raise self._refused(response)

    def check(self) -> Flow[dict[str, str]]:
        """Prove the API key works: look up a probe user (200 found, 404 not found).

        Raises:
            ProviderError: any other answer (a refused key).
        """
        response = yield self._call("users.get", {"id": "chatauth-check"})
        if response.status_code not in (200, 404):
            raise self._refused(response)
        return {"provider": self.name, "app_id": self.app_id}

    def client_config(self) -> dict[str, str]:
        """``{"app_id"}``: what ``new ChatCamp({appId})`` needs."""
        return {"app_id": self.app_id}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "erase"})

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """``users.update`` ``{id, display_name, avatar_url}`` with no token field, so the
        user's access token stays as it is (the vendor plugin calls ``users.update`` when the
        display name or avatar changed; see the module docstring for the sources). A user
        ChatCamp does not know (404, as ``users.get``) is left alone.

        Raises:
            ProviderError: ChatCamp refused.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        body = {
            "id": uid,
            "display_name": identity.name or uid,
            "avatar_url": identity.avatar or "",
        }
        response = yield self._call("users.update", body)
        if response.status_code in (200, 404):
            return None
        raise self._refused(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused: no ChatCamp source documents a deactivate call.

        Raises:
            UnsupportedOperationError: always (``ERROR_UNSUPPORTED_OPERATION``).
        """
        raise self.unsupported(
            "deactivate", "no ChatCamp source documents a deactivate call (erase deletes)."
        )

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``users.delete`` ``{id}`` (named in third-party code; its shape is not confirmed by
        the vendor, docs/providers.md). A user ChatCamp does not know counts as done.

        Raises:
            ProviderError: ChatCamp refused.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        response = yield self._call("users.delete", {"id": uid})
        if response.status_code in (200, 404):
            return None
        raise self._refused(response)
