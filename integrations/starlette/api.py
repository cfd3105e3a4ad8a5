"""FastAPI for API clients: the chat session bound to the client's credential, not a cookie.

::

    from chatauth.integrations.starlette.api import ApiChat

    chat = ApiChat(current_user, secret=SECRET_KEY)   # any dependency returning the user
    app.include_router(chat.router())                  # GET /chat/token, POST /chat/token/refresh

    @app.get("/inbox")
    async def inbox(session: Annotated[ChatSession, Depends(chat.current)]): ...

    @app.post("/logout")
    async def logout(request: Request, user = Depends(current_user)):
        await chat.end(request, user)                  # before the API token is deleted
        ...

``current_user`` is your authentication dependency (fastapi-users'
``fastapi_users.current_user(active=True)``, an ``OAuth2PasswordBearer`` one, ...): whatever it
returns is the user (``None`` or an unauthenticated user: 401). The credential is the
request's bearer token (``Authorization: <scheme> <token>`` or ``X-Session-Token``) unless you
pass ``credential=``; the chat session's app-session id is its keyed hash
(:mod:`chatauth.credentials`), so each API token holds its own chat session, ending when your
logout calls :meth:`ApiChat.end`. ``ChatAuthMiddleware`` must be installed (it carries the
service); no session middleware is needed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from fastapi import APIRouter, Depends
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.starlette.api needs FastAPI: "
        "pip install 'chatauth-middleware[fastapi]'"
    ) from exc
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response

from chatauth.binding import ChatBinding
from chatauth.credentials import aend_credential_session, credential_session_id, header_credential
from chatauth.errors import ChatAuthError, NotAuthenticatedError
from chatauth.json_body import json_bytes
from chatauth.responses import Answer, arefresh_answer, atoken_answer
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

from .chat import get_service
from .fastapi import ChatAuthHTTPException
from .routes import _body

__all__ = ["ApiChat", "bearer_credential"]

#: ``(connection) -> credential or None``.
CredentialGetter = Callable[[HTTPConnection], "str | None"]
_SCOPE_KEY = "chatauth.api"


def bearer_credential(conn: HTTPConnection) -> str | None:
    """The request's ``X-Session-Token``, else the token of its ``Authorization`` header
    (:func:`chatauth.credentials.header_credential`)."""
    return header_credential(conn.headers.get)


def _response(answer: Answer) -> Response:
    status, body, headers = answer
    # The core's bytes, as the session routes send them (a cached session's body is encoded
    # once); ``response_class=JSONResponse`` below only tells OpenAPI the media type.
    return Response(json_bytes(body), status, headers, media_type="application/json")


class ApiChat:
    """The chat session of FastAPI API clients (see the module docstring).

    Args:
        current_user: your dependency returning the authenticated user (or ``None``).
        secret: your app's secret key: the chat session id is a keyed hash of the credential.
        credential: ``(connection) -> str | None``, the credential the user authenticated
            with; default :func:`bearer_credential`. ``None``: one chat session per user.
    """

    def __init__(
        self,
        current_user: Callable[..., Any],
        *,
        secret: str | bytes,
        credential: CredentialGetter = bearer_credential,
    ) -> None:
        # Fails now, not on the first request, without a secret.
        credential_session_id("probe", secret)
        self.current_user = current_user
        self.secret = secret
        self.credential = credential
        # Default-value style: these annotations are strings (postponed evaluation), and
        # FastAPI could not resolve a local alias in them.
        user_dependency = Depends(current_user)

        async def current(request: Request, user: Any = user_dependency) -> ChatSession:
            try:
                return await self.binding(request).aget(lambda: _awaitable(user))
            except ChatAuthError as exc:
                raise ChatAuthHTTPException(exc) from exc

        async def token(request: Request, user: Any = user_dependency) -> Response:
            return _response(
                await atoken_answer(lambda: self.binding(request).aget(lambda: _awaitable(user)))
            )

        async def refresh(request: Request, user: Any = user_dependency) -> Response:
            async def replace(rejected: str) -> ChatSession:
                return await self.binding(request).arefresh(lambda: _awaitable(user), rejected)

            return _response(await arefresh_answer(_body(request), replace))

        #: The dependency: ``Depends(chat.current)`` is the client's
        #: :class:`~chatauth.ChatSession` (or :class:`~.fastapi.ChatAuthHTTPException`: 401,
        #: 503 with ``Retry-After``, ...).
        self.current = current
        self._token = token
        self._refresh = refresh

    def binding(self, conn: HTTPConnection) -> ChatBinding:
        """This request's binding to the credential's chat session (made once per request)."""
        found: ChatBinding | None = conn.scope.get(_SCOPE_KEY)
        if found is None:
            credential = self.credential(conn)
            sid = credential_session_id(credential, self.secret) if credential else None
            found = ChatBinding(get_service(conn), None, app_session=sid)
            conn.scope[_SCOPE_KEY] = found
        return found

    def router(self, prefix: str = "/chat") -> APIRouter:
        """An ``APIRouter`` with ``GET {prefix}/token`` and ``POST {prefix}/token/refresh``
        for API clients (the answers of :mod:`chatauth.responses`)."""
        router = APIRouter(prefix=prefix.rstrip("/"), tags=["chat"])
        router.add_api_route(
            "/token",
            self._token,
            methods=["GET"],
            name="chatauth:api-token",
            summary="The chat token of the authenticated API client",
            response_class=JSONResponse,
        )
        router.add_api_route(
            "/token/refresh",
            self._refresh,
            methods=["POST"],
            name="chatauth:api-refresh",
            summary="Replace the chat token the chat SDK rejected",
            response_class=JSONResponse,
        )
        return router

    async def end(self, conn: HTTPConnection, user: Any) -> list[ChatToken]:
        """End the chat session of the credential ``conn`` carries; call it from your logout
        (or wherever the API token is revoked), with the token's user.

        Returns:
            The tokens dropped (empty when the credential had no chat session or none).

        Raises:
            StoreUnavailableError: the store is down and the service keeps no journal.
        """
        credential = self.credential(conn)
        if not credential:
            return []
        try:
            return await aend_credential_session(get_service(conn), user, credential, self.secret)
        except NotAuthenticatedError:
            return []


async def _awaitable(value: Any) -> Any:
    return value
