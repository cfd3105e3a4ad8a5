"""Matrix (Synapse) provider: a per-session access token for the user's Matrix account.

Two documented ways, chosen by the ``MATRIX_MODE`` setting:

``"admin"`` -- admin login-as (needs an admin access token, ``MATRIX_ADMIN_TOKEN``):
    ``PUT /_synapse/admin/v2/users/{user_id}`` ensures the user (201 created, 200 exists),
    then ``POST /_synapse/admin/v1/users/{user_id}/login`` with ``valid_until_ms`` returns an
    access token that expires with ``token_ttl``. Such a token has no device. References:
    Synapse docs/admin_api/user_admin_api.md ("Create or modify account", "Login as a user").

``"jwt"`` -- JWT login (homeserver ``jwt_config`` with the shared ``MATRIX_JWT_SECRET``):
    ``POST /_matrix/client/v3/login`` ``{"type": "org.matrix.login.jwt", "token": <JWT with
    sub=localpart>}`` creates the user if missing and returns ``{user_id, access_token,
    device_id}``: a real device per app session. The token does not expire at the server;
    chatauth re-issues it after ``token_ttl`` and logs the old one out. The new token then
    sets the profile admin mode sets, display name and avatar (``PUT
    /_matrix/client/v3/profile/{user_id}/displayname`` and ``.../avatar_url``); if that fails,
    the token is logged out before the error is raised. Reference: Synapse docs/jwt.md, Matrix
    client-server API "Profiles".

Either way, end_session is ``POST /_matrix/client/v3/logout`` with the token itself (Matrix
client-server API, "POST /_matrix/client/v3/logout"); a token the server no longer knows
(401 ``M_UNKNOWN_TOKEN``) counts as revoked. The UID is the localpart: ``a-z 0-9 = _ - . /
+``, not all digits, not starting with ``_``, the whole ``@localpart:server`` at most 255
characters (Matrix spec, "User Identifiers").

Settings: ``MATRIX_*``, declared once in :attr:`MatrixProvider.settings_spec` (the class
docstring's table is generated from it).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

import httpx

from chatauth.errors import ChatAuthError, ConfigurationError, ProviderError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity, UIDRules
from chatauth.providers import replies
from chatauth.providers.base import Revocation, UserOperation
from chatauth.providers.jwt import JWTSigner
from chatauth.providers.rest import RESTProvider
from chatauth.settings import Setting
from chatauth.tokens import ChatToken, utcnow

__all__ = ["MatrixProvider"]

Mode = Literal["admin", "jwt"]


def _localpart_problem(uid: str) -> str | None:
    if uid.isdigit():
        return "Matrix refuses all-digit localparts"
    if uid.startswith("_"):
        return "Matrix reserves localparts starting with '_'"
    return None


class MatrixProvider(RESTProvider):
    """Access tokens from a Synapse homeserver (see the module docstring for both modes).

    Args:
        homeserver_url: e.g. ``"https://matrix.example.org"`` (client-server API root).
        server_name: the homeserver's name in user IDs (``@uid:server_name``).
        mode: ``"admin"`` or ``"jwt"``.
        admin_token: an admin's access token (admin mode). Secret.
        signer: a :class:`~chatauth.providers.jwt.JWTSigner` keyed like ``jwt_config`` (JWT
            mode).
        jwt_issuer, jwt_audience: claims ``jwt_config`` may require.
        device_name: the ``initial_device_display_name`` of JWT-login devices.
    """

    name = "matrix"
    revocation: ClassVar[Revocation] = "token"
    #: ``{"errcode": "M_...", "error"}``
    error_path = ("errcode",)
    settings_prefix = "matrix"
    settings_spec = (
        Setting("homeserver_url", "the client-server API root", kind="url", required=True),
        Setting("server_name", "the server name in user IDs; default: the URL's host"),
        Setting(
            "mode",
            "admin login-as or JWT login; default jwt when a JWT secret is set, else admin",
            choices=("admin", "jwt"),
            lower=True,
        ),
        Setting("admin_token", "an admin's access token (admin mode)", secret=True),
        Setting("jwt_secret", "the homeserver's jwt_config secret (jwt mode)", secret=True),
        Setting(
            "jwt_algorithm",
            "jwt_config's algorithm",
            default="HS256",
            choices=("HS256", "HS384", "HS512"),
        ),
        Setting("jwt_issuer", "the iss claim jwt_config requires, if any"),
        Setting("jwt_audience", "the aud claim jwt_config requires, if any"),
        Setting("device_name", "the display name of JWT-login devices", default="chatauth"),
    )

    def __init__(
        self,
        homeserver_url: str,
        *,
        server_name: str | None = None,
        mode: Mode = "jwt",
        admin_token: str | None = None,
        signer: JWTSigner | None = None,
        jwt_issuer: str | None = None,
        jwt_audience: str | None = None,
        device_name: str | None = None,
    ) -> None:
        given = self._declared(
            homeserver_url=homeserver_url,
            server_name=server_name,
            mode=mode,
            admin_token=admin_token,
            jwt_issuer=jwt_issuer,
            jwt_audience=jwt_audience,
            device_name=device_name,
        )
        self.base_url = str(given["homeserver_url"]).rstrip("/")
        mode = given["mode"]
        admin_token = given["admin_token"]
        if mode == "admin" and not admin_token:
            raise ConfigurationError(
                "MATRIX_ADMIN_TOKEN is required in admin mode.",
                setting="MATRIX_ADMIN_TOKEN",
                code="ERROR_API_KEY_NOT_FOUND",
            )
        if mode == "jwt" and signer is None:
            raise ConfigurationError(
                "MATRIX_JWT_SECRET is required in jwt mode.",
                setting="MATRIX_JWT_SECRET",
                code="ERROR_API_KEY_NOT_FOUND",
            )
        self.homeserver_url = self.base_url
        self.server_name: str = given["server_name"] or str(
            urllib.parse.urlsplit(self.base_url).hostname
        )
        self.mode: Mode = mode
        self._admin_token: str | None = admin_token
        self._signer = signer
        self.jwt_issuer: str | None = given["jwt_issuer"]
        self.jwt_audience: str | None = given["jwt_audience"]
        self.device_name: str = given["device_name"]
        self.uid_rules = UIDRules(
            pattern=r"[a-z0-9=_\-./+]+",
            max_length=255 - len(f"@:{self.server_name}"),
            description="a-z 0-9 = _ - . / + (lower case)",
            extra_check=_localpart_problem,
        )

    def __repr__(self) -> str:
        return f"<MatrixProvider {self.homeserver_url!r} mode={self.mode!r}>"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> MatrixProvider:
        """Build from ``matrix_*`` settings (the declared ones; the JWT signer from the
        secret and algorithm in jwt mode).

        Raises:
            ConfigurationError: a required key is missing or malformed.
        """
        given: dict[str, Any] = {
            s.name: settings.get(cls.setting_key(s.name)) for s in cls.settings_spec
        }
        jwt = cls._declared(
            mode=given.pop("mode"),
            jwt_secret=given.pop("jwt_secret"),
            jwt_algorithm=given.pop("jwt_algorithm"),
        )
        mode: Mode = jwt["mode"] or ("jwt" if jwt["jwt_secret"] else "admin")
        signer = None
        if mode == "jwt":
            signer = JWTSigner(
                jwt["jwt_algorithm"], secret=jwt["jwt_secret"], setting_prefix="MATRIX_JWT"
            )
        return cls(mode=mode, signer=signer, **given)

    # -- helpers -----------------------------------------------------------------------------
    def user_id(self, uid: str) -> str:
        """``@uid:server_name``."""
        return f"@{uid}:{self.server_name}"

    def _admin(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Request:
        return self._request(
            method, path, body, headers={"Authorization": f"Bearer {self._admin_token}"}
        )

    # -- flows -------------------------------------------------------------------------------
    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        if self.mode == "admin":
            return self._issue_admin(identity, ttl)
        return self._issue_jwt(identity, ttl)

    def _issue_admin(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        user_id = self.user_id(identity.uid)
        quoted = urllib.parse.quote(user_id, safe="@:")
        profile: dict[str, Any] = {}
        if identity.name:
            profile["displayname"] = identity.name
        if identity.avatar:
            profile["avatar_url"] = identity.avatar
        # PUT is create-or-update: 201 for a new user, 200 for one that exists, so two first
        # logins racing on two workers both succeed.
        response = yield self._admin("PUT", f"/_synapse/admin/v2/users/{quoted}", profile)
        self._expect(response, 200, 201)
        now = utcnow()
        expires = now + ttl
        response = yield self._admin(
            "POST",
            f"/_synapse/admin/v1/users/{quoted}/login",
            {"valid_until_ms": int(expires.timestamp() * 1000)},
        )
        return ChatToken(
            value=self._token(self._expect(response), "access_token"),
            uid=identity.uid,
            provider=self.name,
            issued_at=now,
            expires_at=expires,
            data={"user_id": user_id},
            public=("user_id",),
        )

    def _jwt_login(self, uid: str, now: datetime) -> httpx.Request:
        """``POST /login`` with a fresh login JWT for ``uid``, valid 60 seconds from ``now``.

        Built here rather than in the flow: the flow's frame, which a DEBUG error page shows
        if a later step fails, must not hold the JWT (it logs in as the user until it
        expires); the request's repr shows no body.
        """
        assert self._signer is not None
        # The login JWT only has to live for this request; the access token it buys is ours.
        claims: dict[str, Any] = {
            "sub": uid,
            "iat": int(now.timestamp()),
            "exp": int(now.timestamp()) + 60,
        }
        if self.jwt_issuer:
            claims["iss"] = self.jwt_issuer
        if self.jwt_audience:
            claims["aud"] = self.jwt_audience
        login = {
            "type": "org.matrix.login.jwt",
            "token": self._signer.sign(claims),
            "initial_device_display_name": self.device_name,
        }
        return self._request("POST", "/_matrix/client/v3/login", login)

    def _issue_jwt(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        now = utcnow()
        response = yield self._jwt_login(identity.uid, now)
        if self._error_code(response) == "M_USER_IN_USE":
            # Synapse registers a JWT user at its first login; two first logins at once (two
            # workers, two devices) race and the loser answers 400 M_USER_IN_USE (seen on
            # Synapse 1.163). The user exists now: the same login succeeds.
            response = yield self._jwt_login(identity.uid, now)
        self._expect(response)
        # Parsed in a helper: the answer's access token never sits in this frame's locals,
        # which an error page shows if the display name call below fails.
        token = self._login_token(response, identity.uid, now)
        # The profile, as admin mode's PUT sets it: display name, then avatar.
        profile = [
            (field, value)
            for field, value in (("displayname", identity.name), ("avatar_url", identity.avatar))
            if value
        ]
        if profile:
            # The login created a device and its token: if setting the profile fails, log that
            # token out before raising, or it would stay valid forever, held by nobody.
            quoted = urllib.parse.quote(token.data["user_id"], safe="@:")
            try:
                for field, value in profile:
                    response = yield self._request(
                        "PUT",
                        f"/_matrix/client/v3/profile/{quoted}/{field}",
                        {field: value},
                        headers={"Authorization": f"Bearer {token.value}"},
                    )
                    self._expect(response)
            except Exception as exc:
                yield from self.undo_issue(token, exc)
                raise
        return token

    def _login_token(self, response: httpx.Response, uid: str, now: datetime) -> ChatToken:
        return ChatToken(
            value=self._token(response, "access_token"),
            uid=uid,
            provider=self.name,
            issued_at=now,
            expires_at=None,
            data={
                "user_id": self._field(response, "user_id"),
                "device_id": replies.optional(response, ("device_id",), str) or "",
            },
            public=("user_id", "device_id"),
        )

    def revoke(self, token: ChatToken) -> Flow[None]:
        response = yield self._request(
            "POST",
            "/_matrix/client/v3/logout",
            {},
            headers={"Authorization": f"Bearer {token.value}"},
        )
        if response.status_code == 200 or self._error_code(response) == "M_UNKNOWN_TOKEN":
            return None
        raise self._refused(response)

    def check(self) -> Flow[dict[str, str]]:
        if self.mode == "admin":
            response = yield self._admin("GET", "/_matrix/client/v3/account/whoami")
            admin = self._field(self._expect(response), "user_id")
            response = yield self._admin("GET", "/_synapse/admin/v1/server_version")
            version = replies.optional(self._expect(response), ("server_version",), str) or "?"
            return {"provider": self.name, "mode": "admin", "admin": admin, "server": version}
        response = yield self._request("GET", "/_matrix/client/v3/login")
        listed = self._field(self._expect(response), "flows", kind=list)
        flows = [flow.get("type") for flow in listed if isinstance(flow, dict)]
        if "org.matrix.login.jwt" not in flows:
            raise ConfigurationError(
                "The homeserver does not offer org.matrix.login.jwt: enable jwt_config.",
                setting="MATRIX_MODE",
            )
        return {"provider": self.name, "mode": "jwt", "login_flows": ", ".join(map(str, flows))}

    def client_config(self) -> dict[str, str]:
        return {"homeserver_url": self.homeserver_url, "server_name": self.server_name}

    # -- chat-user operations (chatauth.chat_users) ---------------------------------------
    @property
    def user_operations(self) -> frozenset[UserOperation]:  # type: ignore[override]
        """All three with an admin token (admin mode, or ``MATRIX_ADMIN_TOKEN`` set in jwt
        mode too); only ``update`` without one (done as the user, through a JWT login)."""
        if self._admin_token:
            return frozenset({"update", "deactivate", "erase"})
        return frozenset({"update"})

    def _profile(self, identity: ChatIdentity) -> dict[str, str]:
        # Synapse's profile fields; "" clears one (as deactivation with erase does).
        return {"displayname": identity.name or identity.uid, "avatar_url": identity.avatar or ""}

    def update_user(self, identity: ChatIdentity) -> Flow[None]:
        """Set the display name and avatar URL.

        With an admin token: ``GET /_synapse/admin/v2/users/{user_id}`` (404: the user does
        not exist yet and is left alone; ``deactivated``: left alone), then ``PUT`` the same
        path ``{displayname, avatar_url}`` (Synapse admin API "Create or modify account",
        docs/admin_api/user_admin_api.md). Without one (jwt mode): ``GET
        /_matrix/client/v3/profile/{userId}`` (any 404: no such user or no profile, left
        alone), log in as the user with a
        JWT, ``PUT /_matrix/client/v3/profile/{userId}/displayname`` and ``/avatar_url``
        (client-server API "Profiles"), then log that login's device out again.

        Raises:
            ProviderError: Synapse refused (its ``errcode``).
        """
        uid = self.uid_rules.validate(identity.uid, self.name)
        if self._admin_token:
            return self._update_admin(identity, uid)
        return self._update_as_user(identity, uid)

    def _update_admin(self, identity: ChatIdentity, uid: str) -> Flow[None]:
        path = f"/_synapse/admin/v2/users/{urllib.parse.quote(self.user_id(uid), safe='@:')}"
        response = yield self._admin("GET", path)
        if self._error_code(response) == "M_NOT_FOUND":
            return None
        if response.status_code != 200:
            raise self._refused(response)
        if replies.optional(response, ("deactivated",), bool):
            return None
        response = yield self._admin("PUT", path, self._profile(identity))
        if response.status_code not in (200, 201):
            raise self._refused(response)
        return None

    def _update_as_user(self, identity: ChatIdentity, uid: str) -> Flow[None]:
        # A JWT login would create a user that does not exist yet: ask first.
        quoted = urllib.parse.quote(self.user_id(uid), safe="@:")
        response = yield self._request("GET", f"/_matrix/client/v3/profile/{quoted}")
        if response.status_code == 404:
            # Synapse 1.163: M_UNKNOWN "No row found" for an unknown user, M_NOT_FOUND for one
            # without a profile; either way there is no profile to keep in step.
            return None
        try:
            token = yield from self._issue_jwt(ChatIdentity(uid), timedelta(minutes=1))
        except ProviderError as exc:
            if exc.code == "M_USER_DEACTIVATED":
                return None  # a deactivated user keeps no profile to update
            raise
        quoted = urllib.parse.quote(token.data["user_id"], safe="@:")
        # The login made a device and a token nobody holds: it is logged out in every case,
        # or handed to the service (error.unrevoked) to be queued for revoke-pending.
        try:
            for field, value in self._profile(identity).items():
                response = yield self._request(
                    "PUT",
                    f"/_matrix/client/v3/profile/{quoted}/{field}",
                    {field: value},
                    headers={"Authorization": f"Bearer {token.value}"},
                )
                self._expect(response)
        except Exception as exc:
            yield from self.undo_issue(token, exc)
            raise
        try:
            yield from self.revoke(token)
        except ChatAuthError as exc:
            exc.unrevoked.append(token)
            raise
        return None

    def _deactivate(self, identity: ChatIdentity, *, erase: bool) -> Flow[None]:
        operation: UserOperation = "erase" if erase else "deactivate"
        if not self._admin_token:
            raise self.unsupported(
                operation, "Synapse deactivates through its admin API: set MATRIX_ADMIN_TOKEN."
            )
        return self._deactivate_flow(identity, erase=erase)

    def _deactivate_flow(self, identity: ChatIdentity, *, erase: bool) -> Flow[None]:
        uid = self.uid_rules.validate(identity.uid, self.name)
        quoted = urllib.parse.quote(self.user_id(uid), safe="@:")
        response = yield self._admin(
            "POST", f"/_synapse/admin/v1/deactivate/{quoted}", {"erase": erase}
        )
        if response.status_code == 200 or self._error_code(response) == "M_NOT_FOUND":
            return None
        raise self._refused(response)

    def deactivate_user(self, identity: ChatIdentity) -> Flow[None]:
        """``POST /_synapse/admin/v1/deactivate/{user_id}`` ``{"erase": false}`` (Synapse
        admin API "Deactivate Account"): the user can no longer log in, and every access token
        of theirs is deleted (each then gets 401 ``M_UNKNOWN_TOKEN``). An unknown user counts
        as done.

        Raises:
            UnsupportedOperationError: no admin token (jwt mode without
                ``MATRIX_ADMIN_TOKEN``), raised before any request.
            ProviderError: Synapse refused (its ``errcode``).
        """
        return self._deactivate(identity, erase=False)

    def erase_user(self, identity: ChatIdentity) -> Flow[None]:
        """As :meth:`deactivate_user` with ``{"erase": true}``: Synapse also removes the
        display name and avatar and marks the user erased (its messages are hidden from users
        who join later), the GDPR erasure of Synapse's admin API "Deactivate Account".

        Raises:
            UnsupportedOperationError: no admin token, raised before any request.
            ProviderError: Synapse refused (its ``errcode``).
        """
        return self._deactivate(identity, erase=True)
