"""ChatCamp provider: the user's access token for ``connect(uid, accessToken)`` -- best effort.

ChatCamp publishes no server API reference. What this follows: the ChatCamp authentication
guides (iOS and JavaScript: "Connecting with Access Token": create the user with an access
token through the ChatCamp API on your server, then ``connect(uid, accessToken)`` on the
client; ``disconnect()`` only closes the socket), the ``chatcamp`` npm client 2.4.6, and the
REST shape used by third-party code: ``POST https://api.chatcamp.io/api/1.0/<method>`` with
headers ``x-app-id`` and ``x-api-key``, answers ``{"ok": true, ...}`` or ``{"ok": false,
"error": {"code", "message"}}``. Anything beyond that is inferred and marked so below.

Flow of :meth:`ChatCampProvider.issue`:

1. ``users.update`` ``{id, display_name?, avatar_url?, check_access_token: true}`` -> the user
   with a new ``access_token`` [inferred: ``check_access_token`` on update generates a token];
2. on ``user_not_found``: ``users.create`` ``{id, display_name, avatar_url?,
   check_access_token: true}``; ``user_already_exists`` (a concurrent first login) counts as
   success and step 1 runs again.

A ChatCamp user has **one** access token [inferred]: issuing a token for a second app session
of the same user replaces the first session's token. Revocation is therefore user-wide
(``revocation = "user"``): :meth:`ChatCampProvider.revoke` rotates the user's token to a random
value nobody holds (``users.update`` with ``access_token``), so the token handed out stops
working for new connections. Whether ChatCamp closes a socket that is already connected is
unknown: document logout as "best effort".

Settings: ``CHATCAMP_APP_ID`` (public, required), ``CHATCAMP_API_KEY`` (secret, required),
``CHATCAMP_BASE_URL`` (default ``https://api.chatcamp.io/api/1.0``).
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from chatauth.errors import ConfigurationError, ProviderError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers.base import BaseProvider, Revocation, require_setting
from chatauth.tokens import ChatToken, check_token_value, utcnow

__all__ = ["ChatCampProvider"]

DEFAULT_BASE_URL = "https://api.chatcamp.io/api/1.0"


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("ok") is not False:
        return None
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return str(code) if code is not None else "unknown_error"


def _ok(response: httpx.Response) -> dict[str, Any] | None:
    """The body of a successful answer (HTTP 200 and ``"ok": true``), else ``None``."""
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("ok") is True else None


class ChatCampProvider(BaseProvider):
    """ChatCamp access tokens (see the module docstring: best effort, undocumented API).

    Args:
        app_id: the ChatCamp app id (public; ``new ChatCamp({appId})`` needs it).
        api_key: the server API key (secret).
        base_url: REST root, default ``https://api.chatcamp.io/api/1.0``.

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
    settings_keys = frozenset({"chatcamp_app_id", "chatcamp_api_key", "chatcamp_base_url"})

    def __init__(self, app_id: str, api_key: str, *, base_url: str | None = None) -> None:
        if not app_id or not app_id.strip():
            raise ConfigurationError("CHATCAMP_APP_ID is required.", setting="CHATCAMP_APP_ID")
        if not api_key or not api_key.strip():
            raise ConfigurationError(
                "CHATCAMP_API_KEY is required.",
                setting="CHATCAMP_API_KEY",
                code="ERROR_API_KEY_NOT_FOUND",
            )
        url = base_url or DEFAULT_BASE_URL
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigurationError(
                "CHATCAMP_BASE_URL must be an http(s) URL.", setting="CHATCAMP_BASE_URL"
            )
        self.app_id = app_id
        self.base_url = url.rstrip("/")
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"<ChatCampProvider app_id={self.app_id!r}>"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ChatCampProvider:
        """Build from ``chatcamp_*`` settings.

        Raises:
            ConfigurationError: a required key is missing or malformed.
        """
        return cls(
            str(require_setting(settings, "chatcamp_app_id")),
            str(require_setting(settings, "chatcamp_api_key", secret=True)),
            base_url=settings.get("chatcamp_base_url") or None,
        )

    def _call(self, method: str, body: Mapping[str, Any]) -> httpx.Request:
        return httpx.Request(
            "POST",
            f"{self.base_url}/{method}",
            json=dict(body),
            headers={
                "x-app-id": self.app_id,
                "x-api-key": self._api_key,
                "Accept": "application/json",
            },
        )

    def _refused(self, response: httpx.Response) -> ProviderError:
        code = _error_code(response)
        # ChatCamp answers errors with HTTP 200 and "ok": false; report them as a refusal
        # (400) so they read as the 4xx they are.
        status = response.status_code if response.status_code >= 400 else 400
        return ProviderError(
            f"{self.name} refused {response.request.url.path.rsplit('/', 1)[-1]}"
            + (f" ({code})" if code else "")
            + ".",
            provider=self.name,
            status=status,
            code=code or f"HTTP_{response.status_code}",
        )

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Give the user a new access token, creating the user if missing.

        ``ttl`` is not sent (ChatCamp tokens have no known expiry): ``expires_at`` is ``None``
        and the service re-issues after ``token_ttl``.

        Raises:
            InvalidUIDError: the UID breaks the rules (before any request).
            ProviderError: ChatCamp refused (its ``error.code``, e.g. ``invalid_auth``).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        profile: dict[str, Any] = {}
        if identity.name:
            profile["display_name"] = identity.name
        if identity.avatar:
            profile["avatar_url"] = identity.avatar
        update = {"id": uid, **profile, "check_access_token": True}
        response = yield self._call("users.update", update)
        if _error_code(response) == "user_not_found":
            response = yield self._call(
                "users.create",
                {
                    "id": uid,
                    "display_name": identity.name or uid,
                    **profile,
                    "check_access_token": True,
                },
            )
            if _error_code(response) == "user_already_exists":
                response = yield self._call("users.update", update)
        body = _ok(response)
        if body is None:
            raise self._refused(response)
        user = body.get("user")
        if not isinstance(user, dict):
            user = {}
        value = user.get("access_token")
        check_token_value(value if isinstance(value, str) else "")
        return ChatToken(
            value=str(value), uid=uid, provider=self.name, issued_at=utcnow(), expires_at=None
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Rotate the user's token to a random value nobody holds (best effort).

        Raises:
            ProviderError: ChatCamp refused for another reason than "user not found".
        """
        response = yield self._call(
            "users.update", {"id": token.uid, "access_token": secrets.token_hex(24)}
        )
        if _ok(response) is not None or _error_code(response) == "user_not_found":
            return None
        raise self._refused(response)

    def client_config(self) -> dict[str, str]:
        """``{"app_id"}``: what ``new ChatCamp({appId})`` needs."""
        return {"app_id": self.app_id}
