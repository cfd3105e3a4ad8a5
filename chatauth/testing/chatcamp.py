"""ChatCamp emulator: the ``/api/2.0/<method>`` REST calls and the client's ``connect`` check.

ChatCamp publishes no server API reference. The only vendor-written server code found is the
vendor's WordPress plugin "iFlyChat" 4.7.2 (``iflychat.php``: ``_iflychat_get_auth``,
``iflychat_chatcamp_process_user_data``, ``iflychat_get_hash_session``); this emulator answers
the calls it makes the way it expects them answered, and the ``chatcamp`` npm client 2.4.6
(``connect(uid)``, ``connect(uid, accessToken)``) the client side. Marked [src] what the plugin
shows, *decision* what this emulator picks where it shows nothing.

Methods, all ``POST /api/2.0/<method>`` with a JSON object body and ``x-api-key`` [src]::

    users.get     {id} -> 200 {"user": {...}, "access_token": <current or null>};
                  unknown user -> 404 [src]
    users.create  {id, display_name, avatar_url?, profile_url?, metadata?,
                   check_access_token?, access_token?}
                  -> 200 {"user": {...}, "access_token"} [src]
    users.update  {id, <same fields>} -> 200 {"user": {...}, "access_token"} [src];
                  unknown user -> 404 (*decision*, as users.get)
    users.delete  {id} -> 200 {} ; unknown -> 404 (*decision*; the call is third-party lore)

User: ``{id, display_name, avatar_url, profile_url, metadata, created_at}``.

Tokens [src]: the caller generates the access token and sends it with
``check_access_token: true``; the answer carries it at the top level. A user has one access
token (*decision*): binding a new one (``users.update``) replaces the old, which then stops
working -- how chatauth revokes. ``check_access_token: true`` without ``access_token``
generates one (*decision*); ``access_token: null`` removes it.

Decisions where the plugin shows nothing (it parses no error body): a wrong or missing
``x-api-key`` -> 401; a body that is not a JSON object, a missing ``id`` or ``display_name``,
an ``id`` that is not 1-255 characters without white space, a token that is not a non-empty
string -> 400; an existing id on ``users.create`` -> 409; unknown method -> 404; another verb
-> 405. Every error body is ``{"error": {"code", "message"}}``.

*connect*: a user with a token connects only with that token; a user without one connects
with no token; an unknown UID with no token is auto-created (as the client docs say), with a
token it is refused.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing import canary
from chatauth.testing.server import INVALID_JSON, Emulator, json_response, read_json

__all__ = ["DEFAULT_API_KEY", "DEFAULT_APP_ID", "ChatCampEmulator"]

# Obviously fake test credentials, the emulator's defaults. The app id has the shape the
# plugin recognises as ChatCamp's: 19 characters without "-".
DEFAULT_APP_ID = "chatcampemulatorapp"
DEFAULT_API_KEY = canary.secret("chatcamp-api-key")

_BAD_ID = re.compile(r"[\s\x00-\x1f\x7f]")
_PROFILE = ("display_name", "avatar_url", "profile_url")


class ChatCampEmulator(Emulator):
    """In-memory ChatCamp REST API 2.0, see the module docstring.

    ``ChatCampEmulator(app_id=..., api_key=..., clock=None)``. Inspection: ``users`` (id ->
    user, without tokens), ``token_of(uid)``; client check: ``connect(uid, access_token=None)
    -> bool`` (what ``client.connect(uid, accessToken)`` would decide); ``connections`` lists
    the UIDs that connected.
    """

    api_prefix = "/api/2.0"

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
            return {uid: dict(user) for uid, user in self._users.items()}

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
                self._users[uid] = self._new_user(uid, uid)
            expected = self._tokens.get(uid)
            if expected is None:
                ok = access_token is None
            else:
                ok = access_token is not None and secrets.compare_digest(access_token, expected)
            if ok:
                self.connections.append(uid)
            return ok

    # -- helpers --------------------------------------------------------------------------

    def _new_user(self, uid: str, display_name: str) -> dict[str, Any]:
        return {
            "id": uid,
            "display_name": display_name,
            "avatar_url": "",
            "profile_url": "",
            "metadata": {},
            "created_at": int(self.now()),
        }

    @staticmethod
    def fail(code: str, message: str, status: int) -> Response:
        """A response in this emulator's error shape (the real one is unknown)."""
        return json_response({"error": {"code": code, "message": message}}, status)

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            return {"error": {"code": "rate_limited", "message": "Too many requests"}}, {}
        return {"error": {"code": "internal_error", "message": "Internal server error"}}, {}

    @staticmethod
    def _id_of(body: dict[str, Any]) -> str | Response:
        """The ``id`` parameter, or the error response refusing it."""
        uid = body.get("id")
        if not isinstance(uid, str) or not uid or len(uid) > 255 or _BAD_ID.search(uid):
            return ChatCampEmulator.fail(
                "invalid_id", "id must be 1-255 characters without white space", 400
            )
        return uid

    def _answer(self, uid: str) -> Response:
        return json_response(
            {"user": dict(self._users[uid]), "access_token": self._tokens.get(uid)}
        )

    def _apply(self, uid: str, body: dict[str, Any]) -> Response | None:
        """Store the profile fields and the token of a create/update body; an error response
        for a malformed token."""
        user = self._users[uid]
        for key in _PROFILE:
            if isinstance(body.get(key), str):
                user[key] = body[key]
        if isinstance(body.get("metadata"), dict):
            user["metadata"] = dict(body["metadata"])
        if "access_token" in body:
            value = body["access_token"]
            if value is None:
                self._tokens.pop(uid, None)
            elif isinstance(value, str) and value.strip():
                self._tokens[uid] = value
            else:
                return self.fail("invalid_request", "access_token must be a non-empty string", 400)
        elif body.get("check_access_token") is True:
            self._tokens[uid] = canary.token(secrets.token_urlsafe(32))[:43]
        return None

    # -- dispatch -------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        method = request.path_params["method"]
        handler = {
            "users.get": self._get,
            "users.create": self._create,
            "users.update": self._update,
            "users.delete": self._delete,
        }.get(method)
        if handler is None:
            return self.fail("unknown_method", f"Unknown method {method}", 404)
        if request.method != "POST":
            return self.fail("method_not_allowed", "Use POST", 405)
        api_key = request.headers.get("x-api-key", "")
        if not secrets.compare_digest(api_key.encode(), self._api_key.encode()):
            return self.fail("invalid_auth", "Invalid x-api-key", 401)
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.fail("invalid_request", "Body must be a JSON object", 400)
        with self._lock:
            return handler(body)

    def _get(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", "User not found", 404)
        return self._answer(uid)

    def _create(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        display_name = body.get("display_name")
        if not isinstance(display_name, str) or not display_name:
            return self.fail("missing_parameter", "display_name is required", 400)
        if uid in self._users:
            return self.fail("user_already_exists", "User already exists", 409)
        self._users[uid] = self._new_user(uid, display_name)
        refused = self._apply(uid, body)
        if refused is not None:
            del self._users[uid]
            return refused
        return self._answer(uid)

    def _update(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", "User not found", 404)
        return self._apply(uid, body) or self._answer(uid)

    def _delete(self, body: dict[str, Any]) -> Response:
        uid = self._id_of(body)
        if isinstance(uid, Response):
            return uid
        if uid not in self._users:
            return self.fail("user_not_found", "User not found", 404)
        del self._users[uid]
        self._tokens.pop(uid, None)
        return json_response({})

    def _routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/api/2.0/{method}",
                self._dispatch,
                methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            )
        ]
