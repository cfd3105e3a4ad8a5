"""Sendbird emulator: Chat Platform API v3 users and session tokens.

Follows the Sendbird Chat Platform API v3 reference
(https://sendbird.com/docs/chat/platform-api/v3/): "Create a user", "View a user", "Delete a
user", "Issue a session token", "Revoke all session tokens", "Error codes" and "Rate limits".

Real base URL ``https://api-{application_id}.sendbird.com/v3``; here ``emulator.base_url``
(``<url>/v3``). Header ``Api-Token`` (master or a secondary token); path parameters are
URL-encoded by the caller and decoded here segment by segment (so ``a%2Fb`` is the user
``a/b``)::

    POST   /v3/users                     {user_id, nickname, profile_url, issue_access_token?,
                                          metadata?} -> 200 user
    GET    /v3/users/{user_id}           -> user
    PUT    /v3/users/{user_id}           {nickname?, profile_url?, is_active?,
                                          leave_all_when_deactivated?} -> user
    DELETE /v3/users/{user_id}           -> {}
    POST   /v3/users/{user_id}/token     {expires_at?: Unix ms} -> {token, expires_at}
    DELETE /v3/users/{user_id}/token     -> {} (revokes *all* of the user's session tokens)

User: ``{user_id, nickname, profile_url, access_token, is_online, is_active, created_at,
last_seen_at, has_ever_logged_in, metadata, ...}``. Errors: ``{"error": true, "code",
"message"}`` with HTTP 400: 400105 missing parameter, 400110 value too long, 400151 character
not allowed, 400201 not found, 400202 already exists, 400111 invalid value; 400401 invalid
API token (HTTP 401); 500910 rate limited (HTTP 429).

Decisions where the docs are silent:

- Session token default lifetime 7 days; an ``expires_at`` not in the future, or not an integer,
  -> 400111. Tokens are per user, any number of them, all revoked together.
- ``user_id``: 1-80 characters, no whitespace or control characters (400151); ``nickname`` <=
  80, ``profile_url`` <= 2048 (400110); ``user_id``, ``nickname`` and ``profile_url`` are
  required (``""`` allowed for ``profile_url``) -> 400105.
- ``DELETE .../token`` answers ``{}``; the access token from ``issue_access_token`` is not a
  session token and survives it (use ``is_access_token_alive`` for it).
- Injected 429 carries ``X-RateLimit-RetryAfter``; 5xx -> code 500901.
- A deactivated user (``is_active: false``) cannot connect with any session token, and
  ``leave_all_when_deactivated`` is recorded in ``left_all_channels``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing import canary
from chatauth.testing.sendbird_ws import SendbirdConnections
from chatauth.testing.server import INVALID_JSON, Emulator, json_response, read_json

__all__ = ["DEFAULT_API_TOKEN", "DEFAULT_APP_ID", "SendbirdEmulator"]

# Obviously fake test credentials, the emulator's defaults.
DEFAULT_APP_ID = "SENDBIRD-EMULATOR-APP"
DEFAULT_API_TOKEN = canary.secret("sendbird-master-api-token")

DEFAULT_TOKEN_TTL_MS = 7 * 24 * 3600 * 1000
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")


class SendbirdEmulator(Emulator):
    """In-memory Sendbird Chat Platform API v3, see the module docstring.

    ``SendbirdEmulator(app_id=..., api_token=..., secondary_tokens=(), clock=None)``.
    Inspection: ``users`` (user_id -> user), ``session_tokens_of(user_id)``; client checks:
    ``is_session_token_alive(user_id, token)``, ``is_access_token_alive(user_id, token)``.
    """

    api_prefix = "/v3"

    def __init__(
        self,
        *,
        app_id: str = DEFAULT_APP_ID,
        api_token: str = DEFAULT_API_TOKEN,
        secondary_tokens: tuple[str, ...] = (),
        clock: Any = None,
    ) -> None:
        self.app_id = app_id
        self._api_tokens = (api_token, *secondary_tokens)
        self._users: dict[str, dict[str, Any]] = {}
        self._sessions: dict[str, dict[str, int]] = {}  # user_id -> {token: expires_at ms}
        #: The client SDK's WebSocket (chatauth/testing/sendbird_ws.py), at ``/``.
        self.connections = SendbirdConnections(self)
        super().__init__(clock=clock)

    # -- inspection and client checks ----------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.now() * 1000)

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: user_id -> user."""
        with self._lock:
            return {uid: dict(u) for uid, u in self._users.items()}

    def session_tokens_of(self, user_id: str) -> dict[str, int]:
        """The user's unrevoked session tokens -> ``expires_at`` (ms), expired ones included."""
        with self._lock:
            return dict(self._sessions.get(user_id, {}))

    def is_session_token_alive(self, user_id: str, token: str) -> bool:
        """Whether the client SDK could ``connect(user_id, token)`` with this session token."""
        with self._lock:
            expires_at = self._sessions.get(user_id, {}).get(token)
            active = self._users.get(user_id, {}).get("is_active", False)
        return active and expires_at is not None and expires_at > self._now_ms()

    def is_access_token_alive(self, user_id: str, token: str) -> bool:
        """Whether ``token`` is the user's (non-expiring) access token."""
        with self._lock:
            user = self._users.get(user_id)
            return bool(
                user
                and user["access_token"]
                and secrets.compare_digest(user["access_token"], token)
            )

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def error(code: int, message: str, status: int = 400) -> Response:
        """A response in Sendbird's error shape."""
        return json_response({"error": True, "code": code, "message": message}, status)

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            wait = retry_after if retry_after is not None else 1
            return {
                "error": True,
                "code": 500910,
                "message": f"Too many requests (scope: app, retry_after: {wait}s).",
            }, {"X-RateLimit-RetryAfter": str(wait)}
        return {"error": True, "code": 500901, "message": "Unexpected error."}, {}

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        token = request.headers.get("api-token", "")
        if not any(token and secrets.compare_digest(token, t) for t in self._api_tokens):
            return self.error(400401, 'Invalid value: "Api-Token".', 401)
        # The decoded path would turn %2F into a separator: route on the raw path instead.
        raw = request.scope.get("raw_path") or request.scope["path"].encode()
        segments = [
            unquote(s) for s in raw.decode("latin-1").split("?")[0].split("/")[3:]
        ]  # after "", "v3", "users"
        method = request.method
        if segments == [] or segments == [""]:
            if method == "POST":
                return await self._create_user(request)
        elif len(segments) == 1 and segments[0]:
            if method in ("GET", "HEAD"):
                return self._view_user(segments[0])
            if method == "DELETE":
                return self._delete_user(segments[0])
            if method == "PUT":
                return await self._update_user(request, segments[0])
        elif len(segments) == 2 and segments[0] and segments[1] == "token":
            if method == "POST":
                return await self._issue_token(request, segments[0])
            if method == "DELETE":
                return self._revoke_tokens(segments[0])
        else:
            return self.error(400201, '"Path" not found.', 400)
        return self.error(400108, f"Method {method} is not allowed here.", 405)

    async def _create_user(self, request: Request) -> Response:
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.error(400103, "The request body must be a JSON object.")
        for field in ("user_id", "nickname", "profile_url"):
            if field not in body or body[field] is None:
                return self.error(400105, f'"{field}" must be required.')
            if not isinstance(body[field], str):
                return self.error(400100, f'"{field}" must be a string.')
        user_id, nickname, profile_url = body["user_id"], body["nickname"], body["profile_url"]
        if user_id == "":
            return self.error(400105, '"user_id" must be required.')
        if len(user_id) > 80:
            return self.error(400110, '"user_id" is too long (max 80).')
        if _BAD_CHARS.search(user_id):
            return self.error(400151, '"user_id" contains a character that is not allowed.')
        if len(nickname) > 80:
            return self.error(400110, '"nickname" is too long (max 80).')
        if len(profile_url) > 2048:
            return self.error(400110, '"profile_url" is too long (max 2048).')
        metadata = body.get("metadata") or {}
        if not isinstance(metadata, dict):
            return self.error(400103, '"metadata" must be a JSON object.')
        with self._lock:
            if user_id in self._users:
                return self.error(
                    400202,
                    f'"User" violates a unique constraint. user_id "{user_id}" already exists.',
                )
            user = {
                "user_id": user_id,
                "nickname": nickname,
                "profile_url": profile_url,
                "access_token": canary.token(secrets.token_hex(20))[:40]
                if body.get("issue_access_token") is True
                else "",
                "is_online": False,
                "is_active": True,
                "created_at": int(self.now()),
                "last_seen_at": -1,
                "has_ever_logged_in": False,
                "discovery_keys": [],
                "preferred_languages": [],
                "metadata": dict(metadata),
            }
            self._users[user_id] = user
            self._sessions[user_id] = {}
            return json_response(dict(user))

    def _view_user(self, user_id: str) -> Response:
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return self._not_found(user_id)
            return json_response(dict(user))

    def _delete_user(self, user_id: str) -> Response:
        with self._lock:
            if user_id not in self._users:
                return self._not_found(user_id)
            del self._users[user_id]
            self._sessions.pop(user_id, None)
        return json_response({})

    async def _issue_token(self, request: Request, user_id: str) -> Response:
        body = await read_json(request)
        if body is INVALID_JSON or (body is not None and not isinstance(body, dict)):
            return self.error(400103, "The request body must be a JSON object.")
        expires_at = (body or {}).get("expires_at")
        now_ms = self._now_ms()
        if expires_at is None:
            expires_at = now_ms + DEFAULT_TOKEN_TTL_MS
        elif (
            isinstance(expires_at, bool) or not isinstance(expires_at, int) or expires_at <= now_ms
        ):
            return self.error(400111, '"expires_at" must be a future Unix time in milliseconds.')
        with self._lock:
            if user_id not in self._users:
                return self._not_found(user_id)
            token = canary.token(secrets.token_hex(20))[:40]
            self._sessions.setdefault(user_id, {})[token] = expires_at
        return json_response({"token": token, "expires_at": expires_at})

    def _revoke_tokens(self, user_id: str) -> Response:
        with self._lock:
            if user_id not in self._users:
                return self._not_found(user_id)
            self._sessions[user_id] = {}
        return json_response({})

    def _not_found(self, user_id: str) -> Response:
        return self.error(400201, f'"User" not found. user_id "{user_id}" does not exist.')

    def _routes(self) -> list[BaseRoute]:
        methods = ["GET", "POST", "PUT", "DELETE"]
        return [
            Route("/v3/users", self._dispatch, methods=methods),
            Route("/v3/users/{rest:path}", self._dispatch, methods=methods),
            *self.connections.routes(),
        ]

    async def _update_user(self, request: Request, user_id: str) -> Response:
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.error(400103, "The request body must be a JSON object.")
        for field, limit in (("nickname", 80), ("profile_url", 2048)):
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                return self.error(400100, f'"{field}" must be a string.')
            if isinstance(value, str) and len(value) > limit:
                return self.error(400110, f'"{field}" is too long (max {limit}).')
        active = body.get("is_active")
        if active is not None and not isinstance(active, bool):
            return self.error(400111, '"is_active" must be a boolean.')
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return self._not_found(user_id)
            for field in ("nickname", "profile_url"):
                if isinstance(body.get(field), str):
                    user[field] = body[field]
            if active is not None:
                user["is_active"] = active
                if not active:
                    user["left_all_channels"] = body.get("leave_all_when_deactivated", True)
            return json_response(dict(user))
