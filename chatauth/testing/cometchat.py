"""CometChat emulator: the REST API v3 calls chatauth makes, plus the client SDK's login.

Follows the CometChat REST API v3 reference (https://www.cometchat.com/docs/rest-api, OpenAPI
``chat-apis.json``: users, auth tokens), its error guide, and the client SDK source
(``cometchat/chat-sdk-android`` ``ApiConnection.java``) for ``PUT``/``DELETE /v3.0/me``.

The real REST host is ``https://{appId}.api-{region}.cometchat.io/v3`` and the client host
``https://{appId}.apiclient-{region}.cometchat.io/v3.0``; neither resolves here, so this app
serves both path trees at its root and ignores the Host header: point the provider's
``base_url`` at ``emulator.base_url`` (``<url>/v3``).

REST (header ``apikey``; success ``200 {"data": ...}``)::

    POST   /v3/users                              {uid, name, avatar?, link?, role?, metadata?,
                                                   tags?, withAuthToken?} -> user (+authToken)
    GET    /v3/users/{uid}                        -> user
    PUT    /v3/users/{uid}                        {name?, avatar?, unset?: [field]} -> user
    DELETE /v3/users/{uid}                        {permanent?} -> {success, message}; tokens
                                                  die with it; without permanent: deactivated
    POST   /v3/users/{uid}/auth_tokens            {force?} -> {uid, authToken, createdAt}
    GET    /v3/users/{uid}/auth_tokens            -> [token...], meta.pagination
    GET    /v3/users/{uid}/auth_tokens/{token}    -> token
    PUT    /v3/users/{uid}/auth_tokens/{token}    -> token (stores the body as device info)
    DELETE /v3/users/{uid}/auth_tokens/{token}    -> {success, message}
    DELETE /v3/users/{uid}/auth_tokens            -> {success, message} (flush all)

Client (headers ``appid``, ``authToken``)::

    PUT    /v3.0/me   -> 200 {"data": user}  (what ``CometChat.login(authToken)`` does)
    DELETE /v3.0/me   -> 200; destroys that token (what ``CometChat.logout()`` does)

Errors: ``{"error": {"message", "devMessage", "source": "chat-api", "code", "details"?}}``.

Decisions where the docs are silent (PROVIDERS.md "Emulator" lines):

- Missing ``apikey`` -> 401 ``AUTH_ERR_EMPTY_APIKEY``; unknown key -> 404
  ``AUTH_ERR_APIKEY_NOT_FOUND``; the Auth Key on anything but user/token creation -> 403
  ``AUTH_ERR_NO_ACCESS``.
- Missing ``uid``/``name`` (and over-long name/avatar) -> 400 ``ERR_BAD_REQUEST`` with per-field
  ``details``; a present UID breaking the rules (1-100 of ``a-z 0-9 - _`` after lower-casing)
  -> 400 ``ERR_INVALID_UID``; existing UID -> 400 ``ERR_UID_ALREADY_EXISTS``.
- UIDs are lower-cased on create *and* on lookup, so ``/users/Alice`` finds ``alice``.
- ``POST .../auth_tokens`` always creates a new token, ``force`` or not.
- Unknown token under a known user -> 401 ``ERR_AUTH_TOKEN_NOT_FOUND``; unknown user -> 404
  ``ERR_UID_NOT_FOUND`` (checked first).
- Only the newest ``max_tokens_per_user`` (100) tokens of a user stay valid: creating the 101st
  destroys the oldest.
- Client login: missing ``appid`` -> 401 ``AUTH_ERR_EMPTY_APPID``, wrong -> 401
  ``AUTH_ERR_INVALID_APPID``, missing token -> 401 ``AUTH_ERR_EMPTY_AUTH_TOKEN``, unknown or
  deleted token -> 401 ``AUTH_ERR_AUTH_TOKEN_NOT_FOUND``.
- A deactivated user (deleted without ``permanent: true``) answers 404 ``ERR_UID_NOT_FOUND``
  everywhere and its UID cannot be created again (``ERR_UID_ALREADY_EXISTS``); a permanent
  delete of it removes it for good. ``PUT`` on a deactivated user is ``ERR_UID_NOT_FOUND``.
- Injected 429 -> ``ERR_TOO_MANY_REQUESTS`` with ``X-Rate-Limit-Reset``; 5xx ->
  ``ERR_INTERNAL_SERVER_ERROR`` / ``ERR_SERVICE_UNAVAILABLE`` (real gateways may send HTML).

CometChat Calls: the Calls SDK logs in with the same UID and Chat auth token
(``loginWithAuthToken``), so this emulator covers it. The Calls SDK also fetches a call JWT with
that auth token when joining a session (its ``JWT_NOT_FOUND`` error), from an endpoint that is not
publicly documented; it is not emulated. ``is_token_alive`` answers what matters to chatauth:
whether a revoked token can still log in to Chat or Calls.
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

__all__ = ["DEFAULT_API_KEY", "DEFAULT_APP_ID", "DEFAULT_AUTH_KEY", "CometChatEmulator"]

# Obviously fake test credentials, the emulator's defaults.
DEFAULT_APP_ID = "chatauth-test-app"
DEFAULT_API_KEY = canary.secret("cometchat-rest-api-key")
DEFAULT_AUTH_KEY = canary.secret("cometchat-auth-key")

_UID_RE = re.compile(r"^[a-z0-9_-]{1,100}$")


class CometChatEmulator(Emulator):
    """In-memory CometChat REST API v3 (plus ``/v3.0/me``), see the module docstring.

    ``CometChatEmulator(app_id=..., region=..., api_key=..., auth_key=...,
    max_tokens_per_user=100, clock=None)``; every argument has a test default. ``api_key`` is
    the full-access REST key, ``auth_key`` the create-only Auth Key.

    Inspection: ``users`` (uid -> user dict), ``tokens_of(uid)`` (oldest first),
    ``is_token_alive(token)``, ``logins`` (tokens that logged in through ``PUT /v3.0/me``);
    seeding: ``create_user(uid, name)``, ``create_token(uid)``.
    """

    api_prefix = "/v3"

    def __init__(
        self,
        *,
        app_id: str = DEFAULT_APP_ID,
        region: str = "us",
        api_key: str = DEFAULT_API_KEY,
        auth_key: str = DEFAULT_AUTH_KEY,
        max_tokens_per_user: int = 100,
        clock: Any = None,
    ) -> None:
        self.app_id = app_id
        self.region = region
        self._api_key = api_key
        self._auth_key = auth_key
        self.max_tokens_per_user = max_tokens_per_user
        self._users: dict[str, dict[str, Any]] = {}
        #: Users deleted without ``permanent`` (deactivated): gone from lookups, UID kept.
        self.deactivated: dict[str, dict[str, Any]] = {}
        # uid -> {token: record}, insertion order = creation order (oldest first)
        self._tokens: dict[str, dict[str, dict[str, Any]]] = {}
        self.logins: list[str] = []
        super().__init__(clock=clock)

    @property
    def client_url(self) -> str:
        """Base of the client API (``<url>/v3.0``), standing in for the ``apiclient`` host."""
        return self.url + "/v3.0"

    # -- inspection and seeding ----------------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: uid -> user as ``GET /users/{uid}`` returns it."""
        with self._lock:
            return {uid: dict(user) for uid, user in self._users.items()}

    def tokens_of(self, uid: str) -> list[str]:
        """The user's valid auth tokens, oldest first (empty for an unknown user)."""
        with self._lock:
            return list(self._tokens.get(uid.lower(), {}))

    def is_token_alive(self, token: str) -> bool:
        """Whether ``token`` would log in (``PUT /v3.0/me``) right now."""
        return self._find_token(token) is not None

    def create_user(self, uid: str, name: str | None = None) -> dict[str, Any]:
        """Create a user directly (no HTTP, no validation beyond lower-casing)."""
        with self._lock:
            return dict(self._add_user({"uid": uid, "name": name or uid}))

    def create_token(self, uid: str) -> str:
        """Create an auth token for an existing user directly."""
        with self._lock:
            return str(self._add_token(uid.lower())["authToken"])

    # -- state helpers (call with the lock held) -----------------------------------------

    def _add_user(self, body: dict[str, Any]) -> dict[str, Any]:
        uid = str(body["uid"]).lower()
        user: dict[str, Any] = {"uid": uid, "name": body["name"]}
        for key in ("avatar", "link", "metadata", "tags"):
            if body.get(key) is not None:
                user[key] = body[key]
        user["status"] = "offline"
        user["role"] = body.get("role") or "default"
        user["createdAt"] = int(self.now())
        self._users[uid] = user
        self._tokens.setdefault(uid, {})
        return user

    def _add_token(self, uid: str) -> dict[str, Any]:
        created = int(self.now())
        # The look of the real ones, "<uid>_<createdAt><40 hex>", with a canary mark.
        token = f"{uid}_{created}{canary.token(secrets.token_hex(20))[:40]}"
        record = {"uid": uid, "authToken": token, "createdAt": created}
        tokens = self._tokens.setdefault(uid, {})
        tokens[token] = record
        while len(tokens) > self.max_tokens_per_user:
            del tokens[next(iter(tokens))]
        return record

    def _find_token(self, token: str) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            for uid, tokens in self._tokens.items():
                if token in tokens:
                    return uid, tokens[token]
        return None

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def error(
        status: int,
        code: str,
        message: str,
        *,
        dev_message: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A response in CometChat's error shape."""
        err: dict[str, Any] = {
            "message": message,
            "devMessage": dev_message or message,
            "source": "chat-api",
        }
        if details is not None:
            err["details"] = details
        err["code"] = code
        return json_response({"error": err}, status, headers)

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        if status == 429:
            wait = retry_after if retry_after is not None else 15
            body = {
                "error": {
                    "message": "Too many requests. Please try again later.",
                    "devMessage": "Rate limit exceeded.",
                    "source": "chat-api",
                    "code": "ERR_TOO_MANY_REQUESTS",
                }
            }
            return body, {
                "X-Rate-Limit": "10000",
                "X-Rate-Limit-Reset": str(int(self.now() + wait)),
            }
        code = (
            "ERR_SERVICE_UNAVAILABLE" if status in (502, 503, 504) else "ERR_INTERNAL_SERVER_ERROR"
        )
        return {
            "error": {
                "message": "Something went wrong.",
                "devMessage": "Injected fault.",
                "source": "chat-api",
                "code": code,
            }
        }, {}

    def _authorize(self, request: Request, *, auth_key_ok: bool) -> Response | None:
        key = request.headers.get("apikey")
        if not key:
            return self.error(
                401, "AUTH_ERR_EMPTY_APIKEY", "The apikey header is missing from the request."
            )
        if secrets.compare_digest(key, self._api_key):
            return None
        if secrets.compare_digest(key, self._auth_key):
            if auth_key_ok:
                return None
            return self.error(
                403,
                "AUTH_ERR_NO_ACCESS",
                "The key cannot be used to perform this operation. Please use "
                "API key with a correct scope to perform the operation.",
            )
        return self.error(404, "AUTH_ERR_APIKEY_NOT_FOUND", "The provided API key is invalid.")

    def _authorized_uid(
        self, request: Request, *, auth_key_ok: bool
    ) -> tuple[Response | None, str]:
        """``_authorize`` plus the path's ``{uid}``, lower-cased as CometChat looks UIDs up."""
        return self._authorize(request, auth_key_ok=auth_key_ok), request.path_params["uid"].lower()

    def _bad_request(self, details: Any = None) -> Response:
        return self.error(
            400,
            "ERR_BAD_REQUEST",
            "Failed to validate the data sent with the request.",
            details=details,
        )

    @staticmethod
    def _success(message: str) -> Response:
        return json_response({"data": {"success": True, "message": message}})

    def _user_not_found(self, uid: str) -> Response:
        return self.error(
            404,
            "ERR_UID_NOT_FOUND",
            f"The UID {uid} does not exist, please make sure you have created a "
            f"user with UID {uid}.",
        )

    def _token_not_found(self, token: str) -> Response:
        return self.error(
            401,
            "ERR_AUTH_TOKEN_NOT_FOUND",
            "The auth token does not exist.",
            dev_message=f"The auth token {token[:6]}... does not exist.",
        )

    # -- REST handlers --------------------------------------------------------------------

    async def _create_user(self, request: Request) -> Response:
        denied = self._authorize(request, auth_key_ok=True)
        if denied:
            return denied
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self._bad_request({"body": ["The request body must be a JSON object."]})
        details: dict[str, list[str]] = {}
        uid = body.get("uid")
        name = body.get("name")
        if uid is None or uid == "":
            details["uid"] = ["The uid field is required."]
        elif not isinstance(uid, str):
            details["uid"] = ["The uid must be a string."]
        if name is None or name == "":
            details["name"] = ["The name field is required."]
        elif not isinstance(name, str):
            details["name"] = ["The name must be a string."]
        elif len(name) > 100:
            details["name"] = ["The name may not be greater than 100 characters."]
        avatar = body.get("avatar")
        if avatar is not None and (not isinstance(avatar, str) or len(avatar) > 3000):
            details["avatar"] = ["The avatar may not be greater than 3000 characters."]
        if details:
            return self._bad_request(details)
        assert isinstance(uid, str)
        if not _UID_RE.match(uid.lower()):
            return self.error(
                400,
                "ERR_INVALID_UID",
                "The UID may only contain alphanumeric characters, underscores "
                "and hyphens, and be at most 100 characters long.",
                details={"uid": [uid]},
            )
        with_token = body.get("withAuthToken") is True
        with self._lock:
            if uid.lower() in self._users or uid.lower() in self.deactivated:
                return self.error(
                    400,
                    "ERR_UID_ALREADY_EXISTS",
                    f"The UID {uid.lower()} already exists, please use a different UID.",
                )
            user = dict(self._add_user(body))
            if with_token:
                user["authToken"] = self._add_token(user["uid"])["authToken"]
        return json_response({"data": user})

    async def _get_user(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        with self._lock:
            user = self._users.get(uid)
            if user is None:
                return self._user_not_found(uid)
            return json_response({"data": dict(user)})

    async def _delete_user(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        body = await read_json(request)
        permanent = isinstance(body, dict) and body.get("permanent") is True
        with self._lock:
            if uid not in self._users and not (permanent and uid in self.deactivated):
                return self._user_not_found(uid)
            user = self._users.pop(uid, None) or self.deactivated.pop(uid)
            if not permanent:
                self.deactivated[uid] = user
            self._tokens.pop(uid, None)
        return self._success(f"User with UID {uid} deleted successfully.")

    async def _create_token(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=True)
        if denied:
            return denied
        body = await read_json(request)
        if body is INVALID_JSON or (body is not None and not isinstance(body, dict)):
            return self._bad_request({"body": ["The request body must be a JSON object."]})
        if body and "force" in body and not isinstance(body["force"], bool):
            return self._bad_request({"force": ["The force field must be true or false."]})
        with self._lock:
            if uid not in self._users:
                return self._user_not_found(uid)
            record = dict(self._add_token(uid))
        return json_response({"data": record})

    async def _list_tokens(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        try:
            per_page = max(1, min(100, int(request.query_params.get("perPage", "100"))))
            page = max(1, int(request.query_params.get("page", "1")))
        except ValueError:
            return self._bad_request({"page": ["page and perPage must be integers."]})
        with self._lock:
            if uid not in self._users:
                return self._user_not_found(uid)
            records = [dict(r) for r in self._tokens.get(uid, {}).values()]
        total = len(records)
        chunk = records[(page - 1) * per_page : page * per_page]
        pagination = {
            "total": total,
            "count": len(chunk),
            "per_page": per_page,
            "current_page": page,
            "total_pages": max(1, -(-total // per_page)),
        }
        return json_response({"data": chunk, "meta": {"pagination": pagination}})

    async def _one_token(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        token = request.path_params["token"]
        body = await read_json(request) if request.method == "PUT" else None
        with self._lock:
            if uid not in self._users:
                return self._user_not_found(uid)
            record = self._tokens.get(uid, {}).get(token)
            if record is None:
                return self._token_not_found(token)
            if request.method == "DELETE":
                del self._tokens[uid][token]
                return self._success("Auth token deleted successfully.")
            if request.method == "PUT":
                if body is INVALID_JSON or (body is not None and not isinstance(body, dict)):
                    return self._bad_request()
                record.update(
                    {
                        k: v
                        for k, v in (body or {}).items()
                        if k not in ("uid", "authToken", "createdAt")
                    }
                )
                record["updatedAt"] = int(self.now())
            return json_response({"data": dict(record)})

    async def _flush_tokens(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        with self._lock:
            if uid not in self._users:
                return self._user_not_found(uid)
            self._tokens[uid] = {}
        return self._success(f"Auth tokens of {uid} deleted successfully.")

    # -- client API (what the front-end SDK sends) ----------------------------------------

    def _client_token(self, request: Request) -> tuple[Response | None, str, str]:
        """``(None, uid, token)`` for a client request with a live token, else ``(401, "", "")``."""

        def denied(code: str, message: str) -> tuple[Response | None, str, str]:
            return self.error(401, code, message), "", ""

        app_id = request.headers.get("appid")
        if not app_id:
            return denied("AUTH_ERR_EMPTY_APPID", "The appId header is missing.")
        if app_id != self.app_id:
            return denied(
                "AUTH_ERR_INVALID_APPID", f"The appId {app_id} does not exist in this region."
            )
        token = request.headers.get("authtoken")
        if not token:
            return denied("AUTH_ERR_EMPTY_AUTH_TOKEN", "The authToken header is missing.")
        found = self._find_token(token)
        if found is None:
            return denied(
                "AUTH_ERR_AUTH_TOKEN_NOT_FOUND",
                "The auth token does not exist. Please make sure you are logged "
                "in and have a valid auth token.",
            )
        return None, found[0], token

    async def _me_login(self, request: Request) -> Response:
        denied, uid, token = self._client_token(request)
        if denied:
            return denied
        with self._lock:
            user = self._users[uid]
            user["status"] = "online"
            user["lastActiveAt"] = int(self.now())
            self.logins.append(token)
            return json_response({"data": {**user, "authToken": token}})

    async def _me_logout(self, request: Request) -> Response:
        denied, uid, token = self._client_token(request)
        if denied:
            return denied
        with self._lock:
            self._tokens.get(uid, {}).pop(token, None)
            if uid in self._users and not self._tokens.get(uid):
                self._users[uid]["status"] = "offline"
        return self._success("Logged out successfully.")

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/users", self._create_user, methods=["POST"]),
            Route("/v3/users/{uid}", self._get_user, methods=["GET"]),
            Route("/v3/users/{uid}", self._delete_user, methods=["DELETE"]),
            Route("/v3/users/{uid}", self._update_user, methods=["PUT"]),
            Route("/v3/users/{uid}/auth_tokens", self._create_token, methods=["POST"]),
            Route("/v3/users/{uid}/auth_tokens", self._list_tokens, methods=["GET"]),
            Route("/v3/users/{uid}/auth_tokens", self._flush_tokens, methods=["DELETE"]),
            Route(
                "/v3/users/{uid}/auth_tokens/{token}",
                self._one_token,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route("/v3.0/me", self._me_login, methods=["PUT"]),
            Route("/v3.0/me", self._me_logout, methods=["DELETE"]),
        ]

    async def _update_user(self, request: Request) -> Response:
        denied, uid = self._authorized_uid(request, auth_key_ok=False)
        if denied:
            return denied
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self._bad_request({"body": ["The request body must be a JSON object."]})
        name, avatar, unset = body.get("name"), body.get("avatar"), body.get("unset") or []
        if name is not None and (not isinstance(name, str) or not name or len(name) > 100):
            return self._bad_request({"name": ["The name must be 1-100 characters."]})
        if avatar is not None and (not isinstance(avatar, str) or len(avatar) > 3000):
            return self._bad_request({"avatar": ["The avatar may not be greater than 3000."]})
        if not isinstance(unset, list) or not all(f in ("avatar", "link") for f in unset):
            return self._bad_request({"unset": ["Only avatar and link can be unset."]})
        with self._lock:
            user = self._users.get(uid)
            if user is None:
                return self._user_not_found(uid)
            for field in unset:
                user.pop(field, None)
            if name is not None:
                user["name"] = name
            if avatar is not None:
                user["avatar"] = avatar
            user["updatedAt"] = int(self.now())
            return json_response({"data": dict(user)})
