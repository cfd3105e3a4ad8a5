"""ChatCamp emulator: the ``/api/1.0/<method>`` REST calls and the client's ``connect`` check.

ChatCamp publishes no server API reference. This follows what could be found: the REST shape
used by third-party code (``https://api.chatcamp.io/api/1.0/<method>``, all ``POST``, headers
``x-app-id`` and ``x-api-key``), the ``chatcamp`` npm client 2.4.6 (``initApp(appId)``,
``connect(uid)``, ``connect(uid, accessToken)``, ``disconnect()``) and the ChatCamp iOS/JS
authentication guides. Everything below marked *decision* is this emulator's choice, and
chatauth's ChatCamp provider is documented as best effort accordingly.

Methods (JSON body; answers ``{"ok": true, ...}`` or ``{"ok": false, "error": {"code",
"message"}}``)::

    users.create  {id, display_name, avatar_url?, email?, check_access_token?}
                  -> {ok, user}; with check_access_token true, user.access_token is a new token
    users.update  {id, display_name?, avatar_url?, email?, access_token?, check_access_token?}
                  -> {ok, user}
    users.get     {id} -> {ok, user}
    users.delete  {id} -> {ok}
    users.list    {limit?, offset?} -> {ok, users}

User: ``{id, display_name, avatar_url, email, has_access_token, created_at}`` plus
``access_token`` in the answer that set it.

Decisions:

- *Status codes*: every outcome of a known method is HTTP 200 and ``ok`` says whether it worked
  (the convention of ``ok``-style APIs), so a client must check ``ok``. Unknown method -> 404
  ``{"ok": false, "error": {"code": "unknown_method"}}``; non-POST -> 405.
- *Error codes*: ``invalid_auth`` (missing or wrong ``x-app-id`` / ``x-api-key``),
  ``invalid_request`` (body not a JSON object), ``missing_parameter``, ``invalid_id`` (not 1-255
  characters, or contains whitespace/control characters), ``user_already_exists``,
  ``user_not_found``; injected faults use ``rate_limited`` / ``internal_error``.
- *Tokens*: a user has at most one access token. ``users.update`` with ``access_token: "<v>"``
  sets it to that value, with ``check_access_token: true`` generates a new one (returned);
  either way the old token stops working: this is how chatauth rotates (revokes) a token.
  ``access_token: null`` removes the token (the user then connects without one).
- *connect*: a user with a token connects only with that token; a user without one connects
  with no token; an unknown UID with no token is auto-created (as the client docs say), with
  a token it is refused.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing.server import INVALID_JSON, Emulator, json_response, read_json

__all__ = ["DEFAULT_API_KEY", "DEFAULT_APP_ID", "ChatCampEmulator"]

# Obviously fake test credentials, the emulator's defaults.
DEFAULT_APP_ID = "chatcamp-emulator-app"
DEFAULT_API_KEY = "chatcamp-emulator-api-key"

_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f]")


class ChatCampEmulator(Emulator):
    """In-memory ChatCamp REST API, see the module docstring.

    ``ChatCampEmulator(app_id=..., api_key=..., clock=None)``. Inspection: ``users`` (id ->
    user, without tokens), ``token_of(uid)``; client check: ``connect(uid, access_token=None)
    -> bool`` (what ``client.connect(uid, accessToken)`` would decide); ``connections`` lists
    the UIDs that connected.
    """

    api_prefix = "/api/1.0"

    def __init__(
        self, *, app_id: str = DEFAULT_APP_ID, api_key: str = DEFAULT_API_KEY, clock: Any = None
    ) -> None:
        self.app_id = app_id
        self._api_key = api_key
        self._users: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, str] = {}  # uid -> its one access token
        self.connections: list[str] = []
        super().__init__(clock=clock)

    # -- inspection and the client check --------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: id -> user (no tokens in it)."""
        with self._lock:
            return {uid: self._public(uid) for uid in self._users}

    def token_of(self, uid: str) -> str | None:
        """The user's current access token (None if it has none or does not exist)."""
        with self._lock:
            return self._tokens.get(uid)

    def connect(self, uid: str, access_token: str | None = None) -> bool:
        """Whether the client SDK's ``connect(uid[, accessToken])`` would succeed now."""
        with self._lock:
            if uid not in self._users:
                if access_token is not None or not uid or _BAD_ID.search(uid):
                    return False
                self._add(uid, uid, None, None)
            expected = self._tokens.get(uid)
            if expected is None:
                ok = access_token is None
            else:
                ok = access_token is not None and secrets.compare_digest(access_token, expected)
            if ok:
                self.connections.append(uid)
            return ok

    # -- helpers --------------------------------------------------------------------------

    def _add(
        self, uid: str, display_name: str, avatar_url: str | None, email: str | None
    ) -> dict[str, Any]:
        user = {
            "id": uid,
            "display_name": display_name,
            "avatar_url": avatar_url or "",
            "email": email or "",
            "created_at": int(self.now()),
        }
        self._users[uid] = user
        return user

    def _public(self, uid: str) -> dict[str, Any]:
        user = dict(self._users[uid])
        user["has_access_token"] = uid in self._tokens
        return user

    @staticmethod
    def fail(code: str, message: str, status: int = 200) -> Response:
        """A response in ChatCamp's error shape."""
        return json_response({"ok": False, "error": {"code": code, "message": message}}, status)

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            return {
                "ok": False,
                "error": {"code": "rate_limited", "message": "Too many requests"},
            }, {}
        return {
            "ok": False,
            "error": {"code": "internal_error", "message": "Internal server error"},
        }, {}

    @staticmethod
    def _id_of(body: dict[str, Any]) -> str | Response:
        """The ``id`` parameter, or the error response refusing it."""
        uid = body.get("id")
        if uid is None or uid == "":
            return ChatCampEmulator.fail("missing_parameter", "id is required")
        if not isinstance(uid, str) or len(uid) > 255 or _BAD_ID.search(uid):
            return ChatCampEmulator.fail(
                "invalid_id", "id must be 1-255 characters without whitespace"
            )
        return uid

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        method = request.path_params["method"]
        handler = {
            "users.create": self._create,
            "users.update": self._update,
            "users.get": self._get,
            "users.delete": self._delete,
            "users.list": self._list,
        }.get(method)
        if handler is None:
            return self.fail("unknown_method", f"Unknown method {method}", 404)
        if request.method != "POST":
            return self.fail("method_not_allowed", "Use POST", 405)
        app_id = request.headers.get("x-app-id", "")
        api_key = request.headers.get("x-api-key", "")
        if app_id != self.app_id or not secrets.compare_digest(api_key, self._api_key):
            return self.fail("invalid_auth", "Invalid x-app-id or x-api-key")
        body = await read_json(request)
        if body is None:
            body = {}
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.fail("invalid_request", "Body must be a JSON object")
        with self._lock:
            return handler(body)

    def _create(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        display_name = body.get("display_name")
        if not isinstance(display_name, str) or not display_name:
            return self.fail("missing_parameter", "display_name is required")
        if uid in self._users:
            return self.fail("user_already_exists", f"User {uid} already exists")
        self._add(uid, display_name, body.get("avatar_url"), body.get("email"))
        user = self._public(uid)
        if body.get("check_access_token") is True:
            self._tokens[uid] = user["access_token"] = secrets.token_hex(24)
            user["has_access_token"] = True
        return json_response({"ok": True, "user": user})

    def _update(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", f"User {uid} not found")
        stored = self._users[uid]
        for key in ("display_name", "avatar_url", "email"):
            if isinstance(body.get(key), str):
                stored[key] = body[key]
        new_token: str | None = None
        if "access_token" in body:
            value = body["access_token"]
            if value is None:
                self._tokens.pop(uid, None)
            elif isinstance(value, str) and value:
                self._tokens[uid] = new_token = value
            else:
                return self.fail("invalid_request", "access_token must be a non-empty string")
        elif body.get("check_access_token") is True:
            self._tokens[uid] = new_token = secrets.token_hex(24)
        user = self._public(uid)
        if new_token is not None:
            user["access_token"] = new_token
        return json_response({"ok": True, "user": user})

    def _get(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", f"User {uid} not found")
        return json_response({"ok": True, "user": self._public(uid)})

    def _delete(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", f"User {uid} not found")
        del self._users[uid]
        self._tokens.pop(uid, None)
        return json_response({"ok": True})

    def _list(self, body: dict[str, Any]) -> Response:
        limit = body.get("limit", 100)
        offset = body.get("offset", 0)
        if not isinstance(limit, int) or not isinstance(offset, int) or limit < 1 or offset < 0:
            return self.fail("invalid_request", "limit and offset must be non-negative integers")
        uids = list(self._users)[offset : offset + limit]
        return json_response({"ok": True, "users": [self._public(u) for u in uids]})

    def _routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/api/1.0/{method}",
                self._dispatch,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            )
        ]
