"""Stream Chat emulator: query and upsert users, token revocation, the client's token check.

Follows the Stream Chat server REST API as the official Python SDK uses it
(``GetStream/stream-chat-python`` ``stream_chat/base/client.py``: ``upsert_users``,
``update_users_partial``, ``revoke_user_token``, ``update_app_settings``) and the docs pages
"Tokens & Authentication" and "API Error Codes" (https://getstream.io/chat/docs/).

Every call carries the query ``api_key``, ``Stream-Auth-Type: jwt`` and ``Authorization: <server
JWT>`` (HS256 over ``{"server": true}`` with the API secret; no "Bearer")::

    GET   /users?payload=<JSON>  query users [src ``query_users``]: payload
                   {"filter_conditions": {...}, "sort": [...], "limit"?, "offset"?}
                   -> 200 {"users": [...], "duration"}; no match -> an empty list
    POST  /users   {"users": {"<id>": {"id", "name"?, "image"?, "role"?, ...}}} (<= 100)
                   -> 201 {"users": {...}, "duration"}
    PATCH /users   {"users": [{"id", "set"?: {...}, "unset"?: [...]}]} -> 200 {"users", "duration"}
                   set.revoke_tokens_issued_before: RFC 3339 (or null to lift the cut-off)
    PATCH /app     {"revoke_tokens_issued_before": RFC 3339 | null} -> 200 {"duration"}
    POST  /users/{id}/deactivate  {mark_messages_deleted?} -> 200 {"user", "duration"}
    DELETE /users/{id}?hard_delete=&mark_messages_deleted= -> 200 {"user", "duration"}

(``deactivate_user`` and ``delete_user`` of the same SDK.)

Errors: ``{"code", "message", "StatusCode", "duration", "more_info"}`` - 4 input (400), 2 bad
API key (401), 5 authentication (401), 17 not allowed (403), 16 not found (404), 40 expired or
revoked token (401), 41 not valid yet, 42 issued in the future, 43 bad signature (401),
9 rate limited (429), -1 internal (500).

``connect_user(user_token)`` is the check the Stream edge makes when a client connects with a
user token (the user need not exist: ``connectUser`` upserts it): signature (43), ``user_id``
claim (5), ``exp`` (40), ``nbf`` (41), ``iat`` in the future (42), and the revocation cut-offs:
a token whose ``iat`` is earlier than the user's (or the app's) ``revoke_tokens_issued_before``,
or that has no ``iat`` while a cut-off is set, is refused with 40. The client SDK's WebSocket
``/connect`` makes that check (``connections``, see ``chatauth/testing/stream_ws.py``).

Decisions where the docs are silent:

- User IDs: ``a-z A-Z 0-9 @ _ -``, 1-255 characters, case-sensitive; else 400 code 4.
- The cut-off is compared at full precision with ``iat`` (whole seconds): a token minted in the
  same second as, but before, the revocation instant is revoked; so is one minted in that same
  second just *after* it (its ``iat`` is truncated). Real Stream may round differently.
- ``PATCH /users`` for an unknown user -> 404 code 16.
- Query filters: only ``id`` is understood, as ``{"$eq": id}``, ``{"$in": [ids]}`` or a bare
  id; another field, operator or a malformed payload -> 400 code 4. ``limit`` defaults to 30
  (at most 100), results in creation order; ``sort`` is accepted and ignored.
- A valid JWT without ``"server": true`` on a server endpoint -> 403 code 17.
- 429 faults add ``X-RateLimit-Limit/Remaining/Reset``.
- A deactivated user cannot connect (code 17); deactivating or deleting an unknown user -> 404
  code 16. A deleted user is gone from ``users`` and every token issued before the deletion is
  refused (code 40), as after a revocation; ``deleted[id]`` records ``"hard"`` or ``"soft"``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from chatauth.testing import canary
from chatauth.testing.server import INVALID_JSON, Emulator, json_response, read_json
from chatauth.testing.stream_ws import StreamConnections

__all__ = ["DEFAULT_API_KEY", "DEFAULT_API_SECRET", "StreamEmulator"]

# Obviously fake test credentials, the emulator's defaults (the secret is >= 32 bytes so pyjwt
# does not warn about a short HMAC key).
DEFAULT_API_KEY = "stream-emulator-api-key"
DEFAULT_API_SECRET = canary.secret("stream-api-secret")

_USER_ID_RE = re.compile(r"^[a-zA-Z0-9@_-]{1,255}$")
_MORE_INFO = "https://getstream.io/chat/docs/api_errors_response"


def _rfc3339(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z")
    )


def _queried_ids(raw: str) -> tuple[set[str], int, int] | None:
    """``(ids, limit, offset)`` of a query-users payload filtering on ``id``, else None."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("filter_conditions"), dict):
        return None
    conditions = payload["filter_conditions"]
    limit, offset = payload.get("limit", 30), payload.get("offset", 0)
    if set(conditions) != {"id"} or not isinstance(payload.get("sort", []), list):
        return None
    if not (isinstance(limit, int) and 0 < limit <= 100 and isinstance(offset, int)):
        return None
    condition = conditions["id"]
    if isinstance(condition, str):
        return {condition}, limit, max(0, offset)
    if isinstance(condition, dict) and len(condition) == 1:
        ((operator, value),) = condition.items()
        if operator == "$eq" and isinstance(value, str):
            return {value}, limit, max(0, offset)
        if operator == "$in" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return set(value), limit, max(0, offset)
    return None


def _parse_rfc3339(value: str) -> float | None:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:  # RFC 3339 requires an offset
        return None
    return parsed.timestamp()


class StreamEmulator(Emulator):
    """In-memory Stream Chat server API, see the module docstring.

    ``StreamEmulator(api_key=..., api_secret=..., clock=None)``. Inspection: ``users``
    (id -> user), ``revoked_before(user_id)`` / ``app_revoked_before`` (cut-offs as epoch
    seconds or None); client check: ``connect_user(user_token) -> (ok, error_code)``.
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        clock: Any = None,
    ) -> None:
        self.api_key = api_key
        self._api_secret = api_secret
        self._users: dict[str, dict[str, Any]] = {}
        self._revoked_before: dict[str, float] = {}
        self.app_revoked_before: float | None = None
        #: Deactivated user ids (``POST /users/{id}/deactivate``): they cannot connect.
        self.deactivated: set[str] = set()
        #: Deleted user ids -> how (``"soft"`` or ``"hard"``), from ``DELETE /users/{id}``.
        self.deleted: dict[str, str] = {}
        #: The client SDK's WebSocket edge, ``/connect`` (chatauth/testing/stream_ws.py).
        self.connections = StreamConnections(self)
        super().__init__(clock=clock)

    # -- inspection and the client check --------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: id -> user as the API returns it."""
        with self._lock:
            return {uid: self._resource(uid) for uid in self._users}

    def revoked_before(self, user_id: str) -> float | None:
        """The user's revocation cut-off (epoch seconds), or None."""
        with self._lock:
            return self._revoked_before.get(user_id)

    def connect_user(self, user_token: str) -> tuple[bool, int | None]:
        """Whether a client could connect with ``user_token`` now: ``(True, None)`` or
        ``(False, <Stream error code>)``."""
        try:
            claims = jwt.decode(
                user_token,
                self._api_secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.InvalidSignatureError:
            return False, 43
        except jwt.PyJWTError:
            return False, 5
        user_id = claims.get("user_id")
        if not isinstance(user_id, str) or not user_id:
            return False, 5
        now = self.now()
        exp, nbf, iat = claims.get("exp"), claims.get("nbf"), claims.get("iat")
        if exp is not None and (not isinstance(exp, (int, float)) or exp <= now):
            return False, 40
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now):
            return False, 41
        if iat is not None and not isinstance(iat, (int, float)):
            return False, 42
        if iat is not None and iat > now + 5:  # small leeway for clock skew
            return False, 42
        with self._lock:
            if user_id in self.deactivated:
                return False, 17
            cutoffs = [
                c
                for c in (self._revoked_before.get(user_id), self.app_revoked_before)
                if c is not None
            ]
        for cutoff in cutoffs:
            if iat is None or iat < cutoff:
                return False, 40
        return True, None

    def server_token(self) -> str:
        """The server JWT the Stream SDK sends: HS256 over ``{"server": true}``."""
        return jwt.encode({"server": True}, self._api_secret, algorithm="HS256")

    # -- helpers --------------------------------------------------------------------------

    def _resource(self, uid: str) -> dict[str, Any]:
        user = dict(self._users[uid])
        cutoff = self._revoked_before.get(uid)
        if cutoff is not None:
            user["revoke_tokens_issued_before"] = _rfc3339(cutoff)
        return user

    def error(
        self, status: int, code: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        """A response in Stream's error shape."""
        return json_response(self._error_body(status, code, message), status, headers)

    @staticmethod
    def _error_body(status: int, code: int, message: str) -> dict[str, Any]:
        return {
            "code": code,
            "message": message,
            "StatusCode": status,
            "duration": "0.01ms",
            "more_info": _MORE_INFO,
        }

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            reset = int(self.now() + (retry_after if retry_after is not None else 60))
            return self._error_body(
                429, 9, "Too many requests, check response headers for more information."
            ), {
                "X-RateLimit-Limit": "1000",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            }
        return self._error_body(status, -1, "internal system error"), {}

    def _authenticate(self, request: Request) -> Response | None:
        api_key = request.query_params.get("api_key")
        if not api_key or api_key != self.api_key:
            return self.error(401, 2, f'api_key not found: "{api_key or ""}"')
        if request.headers.get("stream-auth-type", "").lower() != "jwt":
            return self.error(401, 5, "Stream-Auth-Type header must be jwt")
        token = request.headers.get("authorization", "")
        if not token:
            return self.error(401, 5, "Authorization header is missing")
        try:
            claims = jwt.decode(
                token,
                self._api_secret,
                algorithms=["HS256"],
                options={"verify_aud": False, "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            return self.error(401, 40, "JWTAuth error: token has expired")
        except jwt.ImmatureSignatureError:
            return self.error(401, 41, "JWTAuth error: token is not valid yet")
        except jwt.InvalidSignatureError:
            return self.error(
                401,
                43,
                "JWTAuth error: signature is not valid. Make sure the "
                "token is created using the secret for API key "
                f'"{self.api_key}"',
            )
        except jwt.PyJWTError:
            return self.error(401, 5, "JWTAuth error: token is malformed")
        if claims.get("server") is not True:
            return self.error(403, 17, "this request requires a server-side token")
        return None

    # -- handlers -------------------------------------------------------------------------

    async def _upsert(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        body = await read_json(request)
        users = body.get("users") if isinstance(body, dict) else None
        if body is INVALID_JSON or not isinstance(users, dict) or not users:
            return self.error(400, 4, 'UpdateUsers failed with error: "users is a required field"')
        if len(users) > 100:
            return self.error(
                400, 4, 'UpdateUsers failed with error: "users must contain at most 100 items"'
            )
        for key, value in users.items():
            if not isinstance(value, dict):
                return self.error(
                    400, 4, f'UpdateUsers failed with error: "users.{key} must be an object"'
                )
            uid = value.get("id", key)
            if uid != key:
                return self.error(
                    400,
                    4,
                    f'UpdateUsers failed with error: "user id {uid!r} does not match key {key!r}"',
                )
            if not isinstance(uid, str) or not _USER_ID_RE.match(uid):
                return self.error(
                    400,
                    4,
                    'UpdateUsers failed with error: "user_id must not '
                    "be empty, longer than 255 characters, or contain "
                    'characters other than letters, numbers, "@", "_" '
                    'and "-""',
                )
        now = _rfc3339(self.now())
        with self._lock:
            out: dict[str, Any] = {}
            for uid, value in users.items():
                previous = self._users.get(uid)
                # Upsert replaces the custom fields; created_at survives.
                user = {
                    k: v
                    for k, v in value.items()
                    if k not in ("created_at", "updated_at", "revoke_tokens_issued_before")
                }
                user["id"] = uid
                user.setdefault("role", "user")
                user.setdefault("banned", False)
                user.setdefault("online", False)
                user["created_at"] = previous["created_at"] if previous else now
                user["updated_at"] = now
                self._users[uid] = user
                out[uid] = self._resource(uid)
        return json_response({"users": out, "duration": "1.23ms"}, 201)

    async def _query(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        ids = _queried_ids(request.query_params.get("payload", ""))
        if ids is None:
            return self.error(
                400, 4, 'QueryUsers failed with error: "payload must be a filter on id"'
            )
        wanted, limit, offset = ids
        with self._lock:
            found = [self._resource(uid) for uid in self._users if uid in wanted]
        return json_response({"users": found[offset : offset + limit], "duration": "0.87ms"})

    async def _partial_update(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        body = await read_json(request)
        updates = body.get("users") if isinstance(body, dict) else None
        if body is INVALID_JSON or not isinstance(updates, list) or not updates:
            return self.error(
                400, 4, 'UpdateUsersPartial failed with error: "users is a required field"'
            )
        parsed: list[tuple[str, dict[str, Any], list[str], tuple[bool, float | None] | None]]
        parsed = []
        for item in updates:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                return self.error(
                    400, 4, 'UpdateUsersPartial failed with error: "id is a required field"'
                )
            set_ = item.get("set") or {}
            unset = item.get("unset") or []
            if not isinstance(set_, dict) or not isinstance(unset, list):
                return self.error(
                    400,
                    4,
                    'UpdateUsersPartial failed with error: "set must '
                    'be an object and unset a list"',
                )
            revoke: tuple[bool, float | None] | None = None
            if "revoke_tokens_issued_before" in set_:
                raw = set_["revoke_tokens_issued_before"]
                if raw is None:
                    revoke = (True, None)
                elif isinstance(raw, str) and _parse_rfc3339(raw) is not None:
                    revoke = (True, _parse_rfc3339(raw))
                else:
                    return self.error(
                        400,
                        4,
                        "UpdateUsersPartial failed with error: "
                        '"revoke_tokens_issued_before must be an RFC '
                        '3339 timestamp"',
                    )
            parsed.append((item["id"], set_, unset, revoke))
        with self._lock:
            for uid, _, _, _ in parsed:
                if uid not in self._users:
                    return self.error(
                        404,
                        16,
                        f'UpdateUsersPartial failed with error: "user {uid} does not exist"',
                    )
            out: dict[str, Any] = {}
            for uid, set_, unset, revoke in parsed:
                user = self._users[uid]
                for key, value in set_.items():
                    if key not in ("id", "created_at", "updated_at", "revoke_tokens_issued_before"):
                        user[key] = value
                for key in unset:
                    if key not in ("id", "role", "created_at", "updated_at"):
                        user.pop(key, None)
                if revoke is not None:
                    if revoke[1] is None:
                        self._revoked_before.pop(uid, None)
                    else:
                        self._revoked_before[uid] = revoke[1]
                user["updated_at"] = _rfc3339(self.now())
                out[uid] = self._resource(uid)
        return json_response({"users": out, "duration": "1.01ms"})

    async def _update_app(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.error(400, 4, 'UpdateApp failed with error: "body must be an object"')
        if "revoke_tokens_issued_before" in body:
            raw = body["revoke_tokens_issued_before"]
            if raw is None:
                cutoff = None
            elif isinstance(raw, str) and _parse_rfc3339(raw) is not None:
                cutoff = _parse_rfc3339(raw)
            else:
                return self.error(
                    400,
                    4,
                    "UpdateApp failed with error: "
                    '"revoke_tokens_issued_before must be an RFC 3339 '
                    'timestamp"',
                )
            with self._lock:
                self.app_revoked_before = cutoff
        return json_response({"duration": "0.98ms"})

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/users", self._query, methods=["GET"]),
            Route("/users", self._upsert, methods=["POST"]),
            Route("/users", self._partial_update, methods=["PATCH"]),
            Route("/app", self._update_app, methods=["PATCH"]),
            Route("/users/{id}/deactivate", self._deactivate, methods=["POST"]),
            Route("/users/{id}", self._delete, methods=["DELETE"]),
            WebSocketRoute("/connect", self.connections.endpoint),
        ]

    async def _deactivate(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        uid = request.path_params["id"]
        with self._lock:
            if uid not in self._users:
                return self.error(404, 16, f"user {uid!r} not found")
            self.deactivated.add(uid)
            user = self._resource(uid)
        user["deactivated_at"] = _rfc3339(self.now())
        return json_response({"user": user, "duration": "0.98ms"})

    async def _delete(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        uid = request.path_params["id"]
        hard = request.query_params.get("hard_delete") == "true"
        with self._lock:
            if uid not in self._users:
                return self.error(404, 16, f"user {uid!r} not found")
            user = self._resource(uid)
            del self._users[uid]
            self.deactivated.discard(uid)
            self._revoked_before[uid] = self.now()
            self.deleted[uid] = "hard" if hard else "soft"
        user["deleted_at"] = _rfc3339(self.now())
        return json_response({"user": user, "duration": "0.98ms"})
