"""ChatKitty emulator: OAuth2 token endpoint, Platform API users, and the session check.

Follows the ChatKitty Platform API reference (OpenAPI 2.41.9 in ``ChatKitty/chatkitty``;
https://docs.chatkitty.com/platform-api, "Authentication" and "Users") and the user-sessions
concept page (chat function "User Attempted Start Session").

One app serves both real hosts (their paths do not clash): point the token URL at
``<url>/oauth/token`` (real: ``https://authorization.chatkitty.com/oauth/token``) and the API
base at ``emulator.base_url`` (real: ``https://api.chatkitty.com``)::

    POST   /oauth/token       Basic client_id:client_secret, form grant_type=client_credentials
                              -> {access_token, token_type: "bearer", expires_in, scope}
    POST   /v1/users          {name, displayName, isGuest?, properties?} -> 200 user
    HEAD   /v1/users?name=    200 if the user exists, 404 if not (no body)
    GET    /v1/users?name=    paged users {_embedded: {users: [...]}, page, _links}
    GET    /v1/users/{id}     -> user | 404 ResourceNotFoundError
    PATCH  /v1/users/{id}     {displayName?, properties?} -> user
    DELETE /v1/users/{id}     -> application resource
    GET    /v1/user-sessions?state=ACTIVE|ENDED -> paged sessions

User: ``{id (int), type: "PERSON", name, displayName, displayPictureUrl, isGuest, presence,
callStatus, properties, _links}``. Errors: 400/404 ``{"error": "ClientError" |
"ResourceNotFoundError", "message", "timestamp"}``; 401 ``{"error": "unauthorized",
"error_description"}``.

Decisions where the docs are silent:

- Duplicate username -> 400 ``ClientError`` (PROVIDERS.md). Usernames compare exactly.
- Bad client credentials at ``/oauth/token`` -> 401 ``{"error": "invalid_client"}`` (RFC 6749
  5.2); a wrong grant type -> 400 ``unsupported_grant_type``. Only HTTP Basic is accepted.
- Missing, unknown or expired bearer token -> 401 ``{"error": "unauthorized", ...}``.
- An empty page omits ``_embedded``, as Spring HATEOAS does; read it with ``.get``.
- ``start_session`` (the chat function): the function POSTs ``{"username", "authParams"}`` as
  JSON to the app's verify URL and throws unless the answer is 2xx; the session is then allowed
  only if the user exists (the snippet does not create users; ``create_unknown_users=True``
  makes it do so). ChatKitty has no server-side way to end a session; ended app sessions are
  refused by the verify endpoint on the *next* ``startSession``.
- Injected 429/5xx use the ``ApiError`` shape with ``error`` ``"TooManyRequestsError"`` /
  ``"ServerError"``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import secrets
import ssl
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing import canary
from chatauth.testing.server import INVALID_JSON, Emulator, json_response, read_json

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "ChatKittyEmulator",
    "SessionAttempt",
]

# Obviously fake test credentials, the emulator's defaults.
DEFAULT_CLIENT_ID = "chatkitty-emulator-client"
DEFAULT_CLIENT_SECRET = canary.secret("chatkitty-client-secret")
DEFAULT_API_KEY = "chatkitty-emulator-api-key"


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    # httpx builds a fresh context (loading the CA bundle, ~0.1 s) per client otherwise.
    return ssl.create_default_context()


def _iso(ts: float) -> str:
    return (
        datetime.fromtimestamp(ts, timezone.utc)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


class SessionAttempt:
    """One ``startSession`` played by :meth:`ChatKittyEmulator.start_session`:
    ``username``, ``allowed``, ``status`` (the verify URL's HTTP status, None if unreachable)
    and ``reason``."""

    def __init__(self, username: str, allowed: bool, status: int | None, reason: str) -> None:
        self.username = username
        self.allowed = allowed
        self.status = status
        self.reason = reason

    def __repr__(self) -> str:
        return (
            f"<SessionAttempt {self.username!r} allowed={self.allowed} "
            f"status={self.status} reason={self.reason!r}>"
        )


class ChatKittyEmulator(Emulator):
    """In-memory ChatKitty Platform API and OAuth2 server, see the module docstring.

    ``ChatKittyEmulator(client_id=..., client_secret=..., api_key=..., token_ttl=3600,
    create_unknown_users=False, clock=None)``; ``api_key`` is the public key the JS SDK gets.

    Inspection: ``users`` (username -> user), ``access_tokens_issued``, ``sessions`` (started
    sessions), ``session_attempts``; ``start_session(username, auth_params, verify_url)``
    plays the "User Attempted Start Session" chat function and returns whether it allowed
    the session; ``expire_access_tokens()`` ages every issued bearer token out.
    """

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        api_key: str = DEFAULT_API_KEY,
        token_ttl: int = 3600,
        create_unknown_users: bool = False,
        clock: Any = None,
    ) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_key = api_key
        self.token_ttl = token_ttl
        self.create_unknown_users = create_unknown_users
        self._access_tokens: dict[str, float] = {}  # token -> expiry (epoch seconds)
        self._users: dict[int, dict[str, Any]] = {}
        self._next_id = 1
        self._sessions: list[dict[str, Any]] = []
        self.session_attempts: list[SessionAttempt] = []
        super().__init__(clock=clock)

    # -- inspection -----------------------------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: username -> user resource."""
        with self._lock:
            return {u["name"]: self._resource(u) for u in self._users.values()}

    @property
    def access_tokens_issued(self) -> int:
        """How many bearer tokens ``/oauth/token`` has handed out."""
        with self._lock:
            return len(self._access_tokens)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        """Sessions the chat function allowed, oldest first."""
        with self._lock:
            return [dict(s) for s in self._sessions]

    def expire_access_tokens(self) -> None:
        """Make every bearer token issued so far expired (the next API call gets 401)."""
        with self._lock:
            for token in self._access_tokens:
                self._access_tokens[token] = self.now() - 1

    def create_user(self, name: str, display_name: str | None = None) -> dict[str, Any]:
        """Create a user directly (no HTTP)."""
        with self._lock:
            return self._resource(self._add_user(name, display_name or name, False, {}))

    def start_session(
        self,
        username: str,
        auth_params: Any,
        verify_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        client: httpx.Client | None = None,
        timeout: float = 5.0,
    ) -> bool:
        """Play ChatKitty's blocking "User Attempted Start Session" chat function.

        POSTs ``{"username": username, "authParams": auth_params}`` to ``verify_url`` (with
        ``headers``, through ``client`` if given, e.g. one bound to a WSGI app) and allows the
        session iff the answer is 2xx and the user exists. Returns whether it was allowed; the
        details are appended to ``session_attempts``.
        """
        payload = {"username": username, "authParams": auth_params}
        status: int | None
        try:
            if client is not None:
                response = client.post(verify_url, json=payload, headers=dict(headers or {}))
            else:
                with httpx.Client(verify=_tls_context(), timeout=timeout) as own:
                    response = own.post(verify_url, json=payload, headers=dict(headers or {}))
            status = response.status_code
        except httpx.HTTPError as exc:
            # The chat function's fetch throws: ChatKitty denies the session.
            return self._attempt(username, False, None, f"verify URL unreachable: {exc!r}")
        if not 200 <= status < 300:
            return self._attempt(username, False, status, "verify URL refused the params")
        with self._lock:
            user = self._by_name(username)
            if user is None:
                if not self.create_unknown_users:
                    return self._attempt(username, False, status, "no such user")
                user = self._add_user(username, username, False, {})
            self._sessions.append(
                {
                    "id": len(self._sessions) + 1,
                    "state": "ACTIVE",
                    "user": self._resource(user),
                    "createdTime": _iso(self.now()),
                }
            )
        return self._attempt(username, True, status, "allowed")

    def _attempt(self, username: str, allowed: bool, status: int | None, reason: str) -> bool:
        with self._lock:
            self.session_attempts.append(SessionAttempt(username, allowed, status, reason))
        return allowed

    # -- state helpers --------------------------------------------------------------------

    def _by_name(self, name: str) -> dict[str, Any] | None:
        for user in self._users.values():
            if user["name"] == name:
                return user
        return None

    def _add_user(
        self, name: str, display_name: str, is_guest: bool, properties: dict[str, Any]
    ) -> dict[str, Any]:
        user = {
            "id": self._next_id,
            "name": name,
            "displayName": display_name,
            "isGuest": is_guest,
            "properties": properties,
            "displayPictureUrl": "https://api.chatkitty.com/v1/picture/"
            + (display_name or name or "user")[:1].upper(),
        }
        self._users[self._next_id] = user
        self._next_id += 1
        return user

    def _resource(self, user: Mapping[str, Any]) -> dict[str, Any]:
        base = self.served_url or "https://api.chatkitty.com"
        return {
            "id": user["id"],
            "type": "GUEST" if user["isGuest"] else "PERSON",
            "name": user["name"],
            "displayName": user["displayName"],
            "displayPictureUrl": user["displayPictureUrl"],
            "isGuest": user["isGuest"],
            "presence": {"status": "UNAVAILABLE", "online": False},
            "callStatus": "AVAILABLE",
            "properties": dict(user["properties"]),
            "_links": {"self": {"href": f"{base}/v1/users/{user['id']}"}},
        }

    # -- errors ---------------------------------------------------------------------------

    def api_error(self, status: int, error: str, message: str) -> Response:
        """A response in ChatKitty's ``ApiError`` shape."""
        return json_response(
            {"error": error, "message": message, "timestamp": _iso(self.now())}, status
        )

    @staticmethod
    def auth_error(status: int, error: str, description: str) -> Response:
        """A response in ChatKitty's ``AuthenticationError`` (OAuth2) shape."""
        return json_response(
            {"error": error, "error_description": description},
            status,
            {"WWW-Authenticate": f'Bearer error="{error}"'} if status == 401 else None,
        )

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        error = "TooManyRequestsError" if status == 429 else "ServerError"
        message = "Too many requests" if status == 429 else "Injected server fault"
        return {"error": error, "message": message, "timestamp": _iso(self.now())}, {}

    def _check_bearer(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return self.auth_error(
                401, "unauthorized", "Full authentication is required to access this resource"
            )
        with self._lock:
            expiry = self._access_tokens.get(token.strip())
        if expiry is None:
            return self.auth_error(401, "unauthorized", "Invalid access token")
        if expiry <= self.now():
            return self.auth_error(401, "unauthorized", "Access token expired")
        return None

    # -- handlers -------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        scheme, _, encoded = header.partition(" ")
        client_id = secret = ""
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = (
                    base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                client_id = secret = ""
        if not (
            client_id == self.client_id and secrets.compare_digest(secret, self._client_secret)
        ):
            return self.auth_error(401, "invalid_client", "Bad client credentials")
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        grant = form.get("grant_type", [""])[0]
        if not grant:
            return self.auth_error(400, "invalid_request", "Missing grant type")
        if grant != "client_credentials":
            return self.auth_error(
                400, "unsupported_grant_type", f"Unsupported grant type: {grant}"
            )
        token = canary.token(secrets.token_urlsafe(32))[:43]
        with self._lock:
            self._access_tokens[token] = self.now() + self.token_ttl
        return json_response(
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": "create:* read:* update:* delete:*",
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _users_collection(self, request: Request) -> Response:
        denied = self._check_bearer(request)
        if denied:
            return denied
        if request.method == "POST":
            return await self._create_user(request)
        name = request.query_params.get("name")
        if request.method == "HEAD":
            if name is None:
                return Response(status_code=400)
            with self._lock:
                exists = self._by_name(name) is not None
            return Response(status_code=200 if exists else 404)
        try:
            page = max(0, int(request.query_params.get("page", "0")))
            size = max(1, min(100, int(request.query_params.get("size", "25"))))
        except ValueError:
            return self.api_error(400, "ClientError", "page and size must be integers")
        with self._lock:
            found = [
                self._resource(u) for u in self._users.values() if name is None or u["name"] == name
            ]
        return json_response(self._page("users", found, page, size, str(request.url)))

    def _page(
        self, key: str, items: list[dict[str, Any]], page: int, size: int, href: str
    ) -> dict[str, Any]:
        chunk = items[page * size : (page + 1) * size]
        body: dict[str, Any] = {}
        if chunk:
            body["_embedded"] = {key: chunk}
        body["_links"] = {"self": {"href": href}}
        body["page"] = {
            "size": size,
            "totalElements": len(items),
            "totalPages": -(-len(items) // size),
            "number": page,
        }
        return body

    async def _create_user(self, request: Request) -> Response:
        body = await read_json(request)
        if body is INVALID_JSON or not isinstance(body, dict):
            return self.api_error(400, "ClientError", "Request body must be a JSON object")
        name = body.get("name")
        display_name = body.get("displayName")
        is_guest = body.get("isGuest", False)
        properties = body.get("properties") or {}
        if not isinstance(name, str) or not name.strip():
            return self.api_error(400, "ClientError", "name must not be blank")
        if not isinstance(display_name, str) or not display_name.strip():
            return self.api_error(400, "ClientError", "displayName must not be blank")
        if not isinstance(is_guest, bool) or not isinstance(properties, dict):
            return self.api_error(
                400, "ClientError", "isGuest must be a boolean and properties an object"
            )
        with self._lock:
            if self._by_name(name) is not None:
                return self.api_error(400, "ClientError", f"A user with name {name} already exists")
            user = self._add_user(name, display_name, is_guest, properties)
            return json_response(self._resource(user))

    async def _user_item(self, request: Request) -> Response:
        denied = self._check_bearer(request)
        if denied:
            return denied
        raw_id = request.path_params["id"]
        try:
            user_id = int(raw_id)
        except ValueError:
            return self.api_error(400, "ClientError", f"Invalid user ID: {raw_id}")
        body = await read_json(request) if request.method == "PATCH" else None
        with self._lock:
            user = self._users.get(user_id)
            if user is None:
                return self.api_error(
                    404, "ResourceNotFoundError", f"User with ID {user_id} not found"
                )
            if request.method == "DELETE":
                del self._users[user_id]
                for session in self._sessions:
                    if session["user"]["id"] == user_id:
                        session["state"] = "ENDED"
                base = self.served_url or "https://api.chatkitty.com"
                return json_response(
                    {
                        "id": 1,
                        "key": self.api_key,
                        "properties": {},
                        "created": _iso(0),
                        "_links": {"self": {"href": f"{base}/v1/application"}},
                    }
                )
            if request.method == "PATCH":
                if body is INVALID_JSON or not isinstance(body, dict):
                    return self.api_error(400, "ClientError", "Request body must be a JSON object")
                if isinstance(body.get("displayName"), str) and body["displayName"].strip():
                    user["displayName"] = body["displayName"]
                if isinstance(body.get("properties"), dict):
                    user["properties"] = dict(body["properties"])
            return json_response(self._resource(user))

    async def _user_sessions(self, request: Request) -> Response:
        denied = self._check_bearer(request)
        if denied:
            return denied
        state = request.query_params.get("state")
        if state not in (None, "ACTIVE", "ENDED"):
            return self.api_error(400, "ClientError", f"Invalid state: {state}")
        with self._lock:
            found = [dict(s) for s in self._sessions if state is None or s["state"] == state]
        return json_response(self._page("sessions", found, 0, 100, str(request.url)))

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/token", self._token, methods=["POST"]),
            Route("/v1/users", self._users_collection, methods=["GET", "HEAD", "POST"]),
            Route("/v1/users/{id}", self._user_item, methods=["GET", "PATCH", "DELETE"]),
            Route("/v1/user-sessions", self._user_sessions, methods=["GET"]),
        ]
