"""Twilio Conversations emulator: optional user creation and the Access Token check.

Follows the Twilio Conversations REST reference "User resource"
(https://www.twilio.com/docs/conversations/api/user-resource), Twilio's error dictionary
(https://www.twilio.com/docs/api/errors: 20001, 20003, 20404, 50201 and 20101-20107, 20157) and
the ``twilio-python`` helper ``twilio/jwt/access_token`` as the definition of an Access Token.

Real base URL ``https://conversations.twilio.com/v1``; here ``emulator.base_url``
(``<url>/v1``). HTTP Basic with ``<API key SID>:<API key secret>`` (or the account SID and
auth token)::

    POST   /v1/Users            form Identity, FriendlyName?, Attributes?, RoleSid?
                                -> 201 user; duplicate Identity -> 409 code 50201
    GET    /v1/Users/{Sid}      Sid is "US..." or the identity -> user | 404 code 20404
    POST   /v1/Users/{Sid}      form FriendlyName?, Attributes?, RoleSid? -> 200 user
    DELETE /v1/Users/{Sid}      -> 204

User: ``{sid, account_sid, chat_service_sid, role_sid, identity, friendly_name, attributes,
is_online, is_notifiable, date_created, date_updated, url, links}``. Errors:
``{"code", "message", "more_info", "status"}``.

``verify_access_token(jwt)`` checks a token the way Twilio's edge does for the Conversations
SDK and returns its claims, or raises :class:`AccessTokenError` with Twilio's code: header
``alg`` HS256, ``typ`` JWT and ``cty`` ``twilio-fpa;v=1`` (20102); signature with the secret of
the API key named by ``iss`` (20107); ``sub`` = account SID (20103); ``exp`` present and in the
future (20104); ``nbf`` not in the future (20105); ``exp - nbf`` at most 24 h (20157);
``grants.identity`` present and ``grants.chat.service_sid`` the service's (20106).

Decisions where the docs are silent:

- Missing ``Identity`` -> 400 code 20001; an identity of the form ``US`` + 32 hex (a User SID)
  is refused with 20001 too.
- Without ``nbf`` the 24 h cap is measured from now.
- Injected 429 -> code 20429; 5xx -> code 20500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.testing import canary
from chatauth.testing.server import Emulator, json_response

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_API_KEY_SECRET",
    "DEFAULT_API_KEY_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_SERVICE_SID",
    "AccessTokenError",
    "TwilioEmulator",
]

# Obviously fake test credentials (all-zero SIDs), the emulator's defaults.
DEFAULT_ACCOUNT_SID = "AC" + "0" * 32
DEFAULT_API_KEY_SID = "SK" + "0" * 32
DEFAULT_API_KEY_SECRET = canary.secret("twilio-api-key-secret")
DEFAULT_SERVICE_SID = "IS" + "0" * 32
DEFAULT_AUTH_TOKEN = canary.secret("twilio-auth-token")

MAX_TTL_SECONDS = 24 * 3600
_USER_SID_RE = re.compile(r"^US[0-9a-fA-F]{32}$")


class AccessTokenError(Exception):
    """A token Twilio would refuse: ``code`` is Twilio's error code, ``message`` why."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _iso8601(ts: float) -> str:
    # v1 APIs (Conversations) date in ISO 8601; only the 2010 API uses RFC 2822.
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class TwilioEmulator(Emulator):
    """In-memory Twilio Conversations users and Access Token verifier, see the module docstring.

    ``TwilioEmulator(account_sid=..., api_key_sid=..., api_key_secret=..., service_sid=...,
    auth_token=..., clock=None)``. Inspection: ``users`` (identity -> user); client check:
    ``verify_access_token(token) -> claims``; ``revoke_api_key()`` deletes the API key (every
    token it signed then fails with 20107, Twilio's only way to revoke).
    """

    api_prefix = "/v1"

    def __init__(
        self,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        api_key_sid: str = DEFAULT_API_KEY_SID,
        api_key_secret: str = DEFAULT_API_KEY_SECRET,
        service_sid: str = DEFAULT_SERVICE_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        clock: Any = None,
    ) -> None:
        self.account_sid = account_sid
        self.api_key_sid = api_key_sid
        self.service_sid = service_sid
        self._keys: dict[str, str] = {api_key_sid: api_key_secret}
        self._auth_token = auth_token
        self._users: dict[str, dict[str, Any]] = {}  # identity -> user
        super().__init__(clock=clock)

    # -- inspection and the client check --------------------------------------------------

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """A snapshot: identity -> user."""
        with self._lock:
            return {ident: dict(u) for ident, u in self._users.items()}

    def revoke_api_key(self, sid: str | None = None) -> None:
        """Delete an API key (default: the emulator's); tokens it signed stop verifying."""
        with self._lock:
            self._keys.pop(sid or self.api_key_sid, None)

    def verify_access_token(self, token: str) -> dict[str, Any]:
        """The token's claims if Twilio would accept it now, else :class:`AccessTokenError`."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise AccessTokenError(20101, f"Invalid Access Token: {exc}") from None
        if (
            header.get("alg") != "HS256"
            or header.get("typ") != "JWT"
            or header.get("cty") != "twilio-fpa;v=1"
        ):
            raise AccessTokenError(20102, "Invalid Access Token header")
        with self._lock:
            secret = self._keys.get(str(unverified.get("iss")))
        if secret is None:
            raise AccessTokenError(20107, "Invalid Access Token signature (unknown API key)")
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise AccessTokenError(20107, "Invalid Access Token signature") from None
        except jwt.PyJWTError as exc:
            raise AccessTokenError(20101, f"Invalid Access Token: {exc}") from None
        if claims.get("sub") != self.account_sid:
            raise AccessTokenError(20103, "Invalid Access Token issuer/subject")
        now = self.now()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool) or exp <= now:
            raise AccessTokenError(20104, "Access Token expired or expiration date invalid")
        if nbf is not None and (not isinstance(nbf, (int, float)) or nbf > now):
            raise AccessTokenError(20105, "Access Token not yet valid")
        start = nbf if nbf is not None else now
        if exp - start > MAX_TTL_SECONDS:
            raise AccessTokenError(20157, "Expiration Time exceeds maximum of 86400 seconds")
        grants = claims.get("grants")
        if (
            not isinstance(grants, dict)
            or not isinstance(grants.get("identity"), str)
            or not grants["identity"]
        ):
            raise AccessTokenError(20106, "Invalid Access Token grants: no identity")
        chat = grants.get("chat")
        if not isinstance(chat, dict) or chat.get("service_sid") != self.service_sid:
            raise AccessTokenError(20106, "Invalid Access Token grants: chat service_sid")
        return claims

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def error(status: int, code: int, message: str) -> Response:
        """A response in Twilio's error shape."""
        return json_response(
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
            status,
        )

    def _fault_error(self, status: int, retry_after: float | None) -> tuple[Any, dict[str, str]]:
        code = 20429 if status == 429 else 20500
        message = "Too Many Requests" if status == 429 else "Internal Server Error"
        return {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }, {}

    def _authenticate(self, request: Request) -> Response | None:
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                user, _, password = (
                    base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                user = password = ""
            with self._lock:
                secret = self._keys.get(user)
            if secret is not None and secrets.compare_digest(password, secret):
                return None
            if user == self.account_sid and secrets.compare_digest(password, self._auth_token):
                return None
        return self.error(401, 20003, "Authenticate")

    # -- handlers -------------------------------------------------------------------------

    def _resource(self, user: dict[str, Any]) -> dict[str, Any]:
        base = (self.served_url or "https://conversations.twilio.com") + "/v1"
        return {
            **user,
            "url": f"{base}/Users/{user['sid']}",
            "links": {"user_conversations": f"{base}/Users/{user['sid']}/Conversations"},
        }

    async def _create(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        form = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        identity = form.get("Identity", [""])[0]
        if not identity:
            return self.error(400, 20001, "Missing required parameter Identity in the post body")
        if _USER_SID_RE.match(identity):
            return self.error(400, 20001, "Identity must not have the form of a User SID")
        attributes = form.get("Attributes", ["{}"])[0] or "{}"
        try:
            json.loads(attributes)
        except ValueError:
            return self.error(400, 20001, "Attributes must be valid JSON")
        now = _iso8601(self.now())
        with self._lock:
            if identity in self._users:
                return self.error(409, 50201, "User with provided identity already exists")
            user = {
                "sid": "US" + secrets.token_hex(16),
                "account_sid": self.account_sid,
                "chat_service_sid": self.service_sid,
                "role_sid": form.get("RoleSid", ["RL" + "0" * 32])[0],
                "identity": identity,
                "friendly_name": form.get("FriendlyName", [None])[0],
                "attributes": attributes,
                "is_online": None,
                "is_notifiable": None,
                "date_created": now,
                "date_updated": now,
            }
            self._users[identity] = user
            return json_response(self._resource(user), 201)

    def _find(self, sid: str) -> dict[str, Any] | None:
        if sid in self._users:
            return self._users[sid]
        for user in self._users.values():
            if user["sid"] == sid:
                return user
        return None

    async def _item(self, request: Request) -> Response:
        denied = self._authenticate(request)
        if denied:
            return denied
        sid = request.path_params["sid"]
        form: dict[str, list[str]] = {}
        if request.method == "POST":
            body = (await request.body()).decode("utf-8", "replace")
            form = parse_qs(body, keep_blank_values=True)
        with self._lock:
            user = self._find(sid)
            if user is None:
                return self.error(404, 20404, f"The requested resource /Users/{sid} was not found")
            if request.method == "DELETE":
                del self._users[user["identity"]]
                return Response(status_code=204)
            if request.method == "POST":
                return self._update(user, form)
            return json_response(self._resource(user))

    def _routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/Users", self._create, methods=["POST"]),
            Route("/v1/Users/{sid}", self._item, methods=["GET", "POST", "DELETE"]),
        ]

    def _update(self, user: dict[str, Any], form: dict[str, list[str]]) -> Response:
        """Update a User (called with the lock held): the fields given, ``date_updated``."""
        if "Attributes" in form:
            try:
                json.loads(form["Attributes"][0] or "{}")
            except ValueError:
                return self.error(400, 20001, "Attributes must be valid JSON")
            user["attributes"] = form["Attributes"][0] or "{}"
        if "FriendlyName" in form:
            user["friendly_name"] = form["FriendlyName"][0]
        if "RoleSid" in form:
            user["role_sid"] = form["RoleSid"][0]
        user["date_updated"] = _iso8601(self.now())
        return json_response(self._resource(user))
