"""ChatKitty provider: signed ``authParams`` checked by the app's chat function.

ChatKitty does not take a token minted by the app. The client calls
``chatkitty.startSession({username, authParams})``; with guest sessions disabled, ChatKitty runs
the app's blocking chat function "User Attempted Start Session" with ``event.username`` and
``event.authParams``, and the session starts only if the function does not throw. References:
ChatKitty "User Sessions" (https://docs.chatkitty.com/concepts/user-sessions), the Platform API
(OpenAPI 2.41.9, https://docs.chatkitty.com/platform-api: "Authentication", "Users").

So the "token" chatauth issues here is the ``authParams`` value: a short-lived string signed
with itsdangerous (``URLSafeTimedSerializer``, salt ``chatauth.chatkitty.auth-params``) naming
the UID and a random nonce -- never the app's session id. The front end passes it as
``authParams: {token}``; the chat function POSTs ``{username, authParams}`` to the app's verify
URL (see :func:`verify_auth_params`, declared in :attr:`ChatKittyProvider.endpoints` as
``<prefix>/chatkitty/verify`` and so mounted by each framework adapter, and the snippet in
docs/providers.md), which checks the signature, the age (at most ``token_ttl``), that the
username is the signed UID, and that chatauth's store still holds that chat session.

Ending a session: ChatKitty has **no server-side way to end a user session**. ``end_session``
deletes the stored params, so the verify URL refuses them from then on (403) and no new
ChatKitty session can start with them; a ChatKitty socket that is already open stays open
until the client calls ``endSession()`` or the connection drops. ``revocation`` is ``"none"``:
there is nothing to call at ChatKitty.

:meth:`ChatKittyProvider.issue` also makes sure the ChatKitty user exists through the Platform
API: ``HEAD /v1/users?name=<uid>`` (200 exists, 404 not), else ``POST /v1/users`` ``{name,
displayName, isGuest: false}``; a duplicate (undocumented; the emulator answers 400
``ClientError``) counts as success once a second ``HEAD`` sees the user. Platform API calls
carry ``Authorization: Bearer <token>`` from the OAuth2 client-credentials grant (``POST
https://authorization.chatkitty.com/oauth/token``, HTTP Basic ``client_id:client_secret``,
form ``grant_type=client_credentials``), cached until 60 s before ``expires_in``; a 401 drops
the cached token and retries once with a new one.

Settings: ``CHATKITTY_*``, declared once in :attr:`ChatKittyProvider.settings_spec` (the
class docstring's table is generated from it).
"""

from __future__ import annotations

import hmac
import math
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from chatauth.errors import ChatAuthError, ConfigurationError, ProviderError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers import replies
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.rest import RESTProvider
from chatauth.redacted import Redacted
from chatauth.responses import NO_STORE, Answer, ProviderEndpoint, error_answer
from chatauth.settings import Setting
from chatauth.tokens import ChatToken, utcnow

if TYPE_CHECKING:  # the service imports providers, never the other way at run time
    from chatauth.service import ChatAuth

__all__ = ["ChatKittyProvider", "averify_auth_params", "verify_auth_params"]

DEFAULT_BASE_URL = "https://api.chatkitty.com"
DEFAULT_AUTH_URL = "https://authorization.chatkitty.com/oauth/token"
#: itsdangerous salt: these signatures mean "ChatKitty authParams" and nothing else.
SALT = "chatauth.chatkitty.auth-params"
#: Renew the cached bearer token this many seconds before ChatKitty says it expires.
BEARER_MARGIN = 60.0


def _bearer_grant(response: httpx.Response) -> tuple[Redacted, float]:
    """``(access token, lifetime in seconds)`` from an OAuth2 token answer; the token is
    :class:`~chatauth.redacted.Redacted` so that frames holding it show no value.

    Raises:
        ProviderError: ``ERROR_NO_ACCESS_TOKEN`` when the answer has no usable token.
    """
    token = replies.optional(response, ("access_token",), str)
    if not token:
        raise ProviderError(
            "chatkitty answered the token request without an access_token.",
            provider=ChatKittyProvider.name,
            status=response.status_code,
            code="ERROR_NO_ACCESS_TOKEN",
        )
    # Unknown or absurd: renew before every call rather than trust it.
    lifetime = replies.optional(response, ("expires_in",), float) or 0.0
    return Redacted(token), lifetime if math.isfinite(lifetime) else 0.0


class ChatKittyProvider(RESTProvider):
    """Signed ``authParams`` for ChatKitty sessions (see the module docstring).

    Args:
        api_key: the application's API key (public; ``new ChatKitty({apiKey})``).
        client_id, client_secret: Platform API OAuth2 client credentials (the secret is
            secret).
        signing_key: secret that signs ``authParams``; default: derived from
            ``client_secret`` (rotating the client secret then invalidates outstanding params).
        base_url: Platform API root, default ``https://api.chatkitty.com``.
        auth_url: OAuth2 token endpoint, default
            ``https://authorization.chatkitty.com/oauth/token``.

    Raises:
        ConfigurationError: ``ERROR_API_KEY_NOT_FOUND`` without the API key or client
            secret, ``ERROR_CONFIG`` without the client id or for a malformed URL.
    """

    name: ClassVar[str] = "chatkitty"
    revocation: ClassVar[Revocation] = "none"
    # Usernames: ChatKitty recommends hashed e-mail addresses or phone numbers.
    uid_rules = UIDRules(
        pattern=r"[A-Za-z0-9._@+=:\-]+",
        max_length=255,
        description="letters, digits and . _ @ + = : -",
    )
    #: ``{"error": "ClientError" | "unauthorized" | ..., "message"}``
    error_path = ("error",)
    settings_prefix = "chatkitty"
    settings_spec = (
        Setting(
            "api_key",
            "the application's API key (public: new ChatKitty({apiKey}))",
            key=True,
            required=True,
        ),
        Setting("client_id", "the Platform API OAuth2 client id", required=True),
        Setting(
            "client_secret", "the Platform API OAuth2 client secret", secret=True, required=True
        ),
        Setting(
            "signing_key",
            "signs the authParams; default: derived from the client secret",
            secret=True,
        ),
        Setting("base_url", "Platform API root", kind="url", default=DEFAULT_BASE_URL),
        Setting("auth_url", "OAuth2 token endpoint", kind="url", default=DEFAULT_AUTH_URL),
    )

    def __init__(
        self,
        api_key: str,
        client_id: str,
        client_secret: str,
        *,
        signing_key: str | None = None,
        base_url: str | None = None,
        auth_url: str | None = None,
    ) -> None:
        given = self._declared(
            api_key=api_key,
            client_id=client_id,
            client_secret=client_secret,
            signing_key=signing_key,
            base_url=base_url,
            auth_url=auth_url,
        )
        self.base_url = str(given["base_url"]).rstrip("/")
        self.auth_url: str = given["auth_url"]
        self.api_key: str = given["api_key"]
        self.client_id: str = given["client_id"]
        self._client_secret: str = given["client_secret"]
        # Without a dedicated key, a key derived from the client secret, never the secret
        # itself, so a leak of one signature scheme says nothing about the other.
        key: str = (
            given["signing_key"]
            or hmac.new(
                self._client_secret.encode(), b"chatauth chatkitty authParams", "sha256"
            ).hexdigest()
        )
        self._serializer = URLSafeTimedSerializer(key, salt=SALT)
        self._bearer: tuple[str, float] | None = None  # (token, monotonic expiry)
        self._bearer_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ChatKittyProvider api_key={self.api_key!r}>"

    # -- authParams --------------------------------------------------------------------------
    def sign_auth_params(self, uid: str) -> str:
        """A signed, timestamped string naming ``uid`` and a random nonce."""
        return self._serializer.dumps({"uid": uid, "nonce": secrets.token_urlsafe(12)})

    def load_auth_params(self, value: str, *, max_age: float) -> str:
        """The UID a signed value names.

        Raises:
            SignatureExpired: older than ``max_age`` seconds.
            BadSignature: not signed by this provider's key (or not ours at all).
        """
        data = self._serializer.loads(value, max_age=max(1, math.ceil(max_age)))
        uid = data.get("uid") if isinstance(data, dict) else None
        if not isinstance(uid, str):
            raise BadSignature("authParams carry no uid")
        return uid

    # -- Platform API ------------------------------------------------------------------------
    def _cached_bearer(self) -> str | None:
        with self._bearer_lock:
            if self._bearer is not None and self._bearer[1] > time.monotonic():
                return self._bearer[0]
            return None

    def _fetch_bearer(self) -> Flow[str]:
        request = httpx.Request(
            "POST",
            self.auth_url,
            data={"grant_type": "client_credentials"},
            headers={"Accept": "application/json"},
        )
        # httpx's Basic scheme encodes the client credentials into the header: no local
        # variable of this frame holds them (error pages list locals; issue 15).
        response = yield next(
            httpx.BasicAuth(self.client_id, self._client_secret).auth_flow(request)
        )
        token, lifetime = _bearer_grant(self._expect(response))
        with self._bearer_lock:
            self._bearer = (token, time.monotonic() + max(0.0, lifetime - BEARER_MARGIN))
        return token

    def _api(self, build: Callable[[str], httpx.Request]) -> Flow[httpx.Response]:
        """Send a Platform API request with a bearer token; renew it once on a 401."""
        bearer = self._cached_bearer()
        fresh = bearer is None
        if bearer is None:
            bearer = yield from self._fetch_bearer()
        response = yield build(bearer)
        if response.status_code == 401 and not fresh:
            with self._bearer_lock:
                self._bearer = None
            bearer = yield from self._fetch_bearer()
            response = yield build(bearer)
        return response

    def _users_request(
        self,
        method: str,
        bearer: str,
        *,
        name: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> httpx.Request:
        return self._request(
            method,
            "/v1/users",
            body,
            params={"name": name} if name is not None else None,
            headers={"Authorization": f"Bearer {bearer}"},
        )

    def _user_exists(self, uid: str) -> Flow[bool]:
        response = yield from self._api(lambda b: self._users_request("HEAD", b, name=uid))
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._refused(response)

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        """Ensure the ChatKitty user exists, then sign ``authParams`` valid for ``ttl``.

        Raises:
            InvalidUIDError: the UID breaks the rules (before any request).
            ProviderError: ChatKitty refused (``invalid_client`` for bad client credentials,
                ``ClientError``, ...).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        exists = yield from self._user_exists(uid)
        if not exists:
            body = {"name": uid, "displayName": identity.name or uid, "isGuest": False}
            response = yield from self._api(lambda b: self._users_request("POST", b, body=body))
            if response.status_code != 200:
                # A duplicate name is undocumented: accept it only if the user is there now.
                created_meanwhile = yield from self._user_exists(uid)
                if not created_meanwhile:
                    raise self._refused(response)
        now = utcnow()
        return ChatToken(
            value=self.sign_auth_params(uid),
            uid=uid,
            provider=self.name,
            issued_at=now,
            expires_at=now + ttl,
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        """Nothing to call: ChatKitty cannot end a session server-side. The store entry the
        verify URL checks is already gone when this runs."""
        return None
        yield  # pragma: no cover - makes this a generator

    def check(self) -> Flow[dict[str, str]]:
        """Get a Platform API token and look up a probe user.

        Raises:
            ProviderError: bad client credentials or a refused call.
        """
        yield from self._user_exists("chatauth-check")
        return {"provider": self.name, "client_id": self.client_id}

    def client_config(self) -> dict[str, str]:
        """``{"api_key"}``: what ``new ChatKitty({apiKey})`` needs. The front end then calls
        ``startSession({username: uid, authParams: {token}})``."""
        return {"api_key": self.api_key}

    # -- the verify URL's logic, shared by the framework adapters -------------------------------

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    user_operations: frozenset[UserOperation] = frozenset({"update", "erase"})

    def _user_id(self, uid: str) -> Flow[int | None]:
        """ChatKitty's numeric id of the user named ``uid`` (``GET /v1/users?name=``), or
        ``None`` when there is no such user."""
        response = yield from self._api(lambda b: self._users_request("GET", b, name=uid))
        if response.status_code != 200:
            raise self._refused(response)
        # An empty page has no _embedded at all (Spring HATEOAS).
        users = replies.optional(response, ("_embedded", "users"), list) or []
        for user in users:
            if (
                isinstance(user, dict)
                and user.get("name") == uid
                and isinstance(user.get("id"), int)
            ):
                return int(user["id"])
        return None

    def _item_request(
        self, method: str, bearer: str, user_id: int, body: Mapping[str, Any] | None = None
    ) -> httpx.Request:
        return self._request(
            method, f"/v1/users/{user_id}", body, headers={"Authorization": f"Bearer {bearer}"}
        )

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """``PATCH /v1/users/{id}`` ``{"displayName"}`` (Platform API "Update a user"). The
        avatar is not sent: ChatKitty takes a display picture as a file
        (``POST /v1/users/{id}/display-picture``), not as a URL in the profile. A user
        ChatKitty does not know is left alone.

        Raises:
            ProviderError: ChatKitty refused.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        user_id = yield from self._user_id(uid)
        if user_id is None:
            return None
        body = {"displayName": identity.name or uid}
        response = yield from self._api(lambda b: self._item_request("PATCH", b, user_id, body))
        if response.status_code in (200, 404):
            return None
        raise self._refused(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """Refused: the Platform API has no call to deactivate a user (only delete).

        Raises:
            UnsupportedOperationError: always (``ERROR_UNSUPPORTED_OPERATION``).
        """
        raise self.unsupported(
            "deactivate", "its Platform API has no deactivate call (erase deletes the user)."
        )

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """``DELETE /v1/users/{id}`` (Platform API "Delete a user"). A user ChatKitty does not
        know counts as done.

        Raises:
            ProviderError: ChatKitty refused.
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        user_id = yield from self._user_id(uid)
        if user_id is None:
            return None
        response = yield from self._api(lambda b: self._item_request("DELETE", b, user_id))
        if response.status_code in (200, 404):
            return None
        raise self._refused(response)


class _Denied(Exception):
    """Internal: the params are refused with this code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code)
        self.code = code
        self.message = message

    def answer(self) -> Answer:
        return 403, {"error": {"code": self.code, "message": self.message}}, dict(NO_STORE)


def _provider(chatauth: ChatAuth) -> ChatKittyProvider:
    provider = chatauth.provider
    if not isinstance(provider, ChatKittyProvider):
        raise ConfigurationError(
            "The ChatKitty verify endpoint needs PROVIDER = 'chatkitty'.", setting="PROVIDER"
        )
    return provider


def _claimed(chatauth: ChatAuth, payload: Mapping[str, Any]) -> tuple[str, str]:
    """``(uid, value)`` from a well-signed payload naming the signed username.

    Raises:
        _Denied: malformed payload, bad signature, expired, or another username.
    """
    provider = _provider(chatauth)
    username = payload.get("username") if isinstance(payload, Mapping) else None
    params = payload.get("authParams") if isinstance(payload, Mapping) else None
    value = params.get("token") if isinstance(params, Mapping) else params
    if not isinstance(username, str) or not isinstance(value, str) or not value:
        raise _Denied(
            "ERROR_AUTH_PARAMS_INVALID", 'Expected {"username": ..., "authParams": {"token": ...}}.'
        )
    try:
        uid = provider.load_auth_params(value, max_age=chatauth.token_ttl.total_seconds())
    except SignatureExpired:
        raise _Denied("ERROR_AUTH_PARAMS_EXPIRED", "The authParams have expired.") from None
    except BadSignature:
        raise _Denied("ERROR_AUTH_PARAMS_INVALID", "The authParams are not valid.") from None
    if not hmac.compare_digest(uid.encode(), username.encode()):
        raise _Denied(
            "ERROR_AUTH_PARAMS_USERNAME", "The authParams were issued for another username."
        )
    return uid, value


def _judge(uid: str, value: str, stored: list[ChatToken]) -> Answer:
    for token in stored:
        if hmac.compare_digest(token.value.encode(), value.encode()) and not token.is_expired():
            return 200, {"allow": True, "username": uid}, dict(NO_STORE)
    return _Denied("ERROR_SESSION_ENDED", "This chat session has ended; log in again.").answer()


def verify_auth_params(chatauth: ChatAuth, payload: Mapping[str, Any]) -> Answer:
    """Decide a ChatKitty "User Attempted Start Session" for the app's chat function.

    Framework adapters mount this as a POST endpoint taking the chat function's JSON body
    ``{"username": str, "authParams": {"token": str}}``; the chat function throws (denying the
    session) unless the answer is 2xx.

    Args:
        chatauth: the app's :class:`~chatauth.service.ChatAuth` (provider ``"chatkitty"``).
        payload: the decoded JSON body.

    Returns:
        ``(200, {"allow": true, "username": uid}, NO_STORE)`` when the params are well signed,
        younger than ``token_ttl``, name this username, and the chat session is still in the
        store; otherwise ``(403, {"error": {"code", "message"}}, NO_STORE)`` with code
        ``ERROR_AUTH_PARAMS_INVALID``, ``ERROR_AUTH_PARAMS_EXPIRED``,
        ``ERROR_AUTH_PARAMS_USERNAME`` or ``ERROR_SESSION_ENDED`` (after ``end_session``).
        A store outage answers 503 with ``Retry-After`` (``error_answer``).

    Raises:
        ConfigurationError: ``chatauth`` is not configured for ChatKitty.
    """
    try:
        uid, value = _claimed(chatauth, payload)
    except _Denied as denied:
        return denied.answer()
    try:
        stored = chatauth.store.sessions(ChatKittyProvider.name, uid)
    except ChatAuthError as exc:
        return error_answer(exc)
    return _judge(uid, value, stored)


async def averify_auth_params(chatauth: ChatAuth, payload: Mapping[str, Any]) -> Answer:
    """Async twin of :func:`verify_auth_params`; the store read leaves the event loop by the
    store's own rule (:meth:`~chatauth.stores.base.BaseStore.asessions`)."""
    try:
        uid, value = _claimed(chatauth, payload)
    except _Denied as denied:
        return denied.answer()
    try:
        stored = await chatauth.store.asessions(ChatKittyProvider.name, uid)
    except ChatAuthError as exc:
        return error_answer(exc)
    return _judge(uid, value, stored)


#: ``POST <prefix>/chatkitty/verify``: the URL the chat function calls (docs/providers.md).
ChatKittyProvider.endpoints = (
    ProviderEndpoint("chatkitty/verify", "POST", verify_auth_params, averify_auth_params),
)
