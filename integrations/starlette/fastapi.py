"""FastAPI helpers: the ``current_chat`` dependency and a router for the token endpoint.

::

    from chatauth.integrations.starlette.fastapi import CurrentChat, chat_router

    app.include_router(chat_router())            # GET /chat/token

    @app.get("/me/chat")
    async def me(chat: CurrentChat):             # or: chat = Depends(current_chat)
        return {"uid": chat.uid}

``ChatAuthMiddleware`` must be installed as for Starlette.
"""

from __future__ import annotations

from typing import Annotated

try:
    from fastapi import APIRouter, Depends, HTTPException
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.starlette.fastapi needs FastAPI: "
        "pip install 'chatauth-middleware[fastapi]'"
    ) from exc
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse

from chatauth.errors import ChatAuthError
from chatauth.responses import error_answer
from chatauth.session import ChatSession

from .chat import get_chat
from .routes import METHODS, provider_endpoint, refresh_endpoint, script_endpoint, token_endpoint

__all__ = [
    "ChatAuthHTTPException",
    "CurrentChat",
    "chat_router",
    "chatauth_exception_handler",
    "current_chat",
]


class ChatAuthHTTPException(HTTPException):
    """An ``HTTPException`` carrying the token endpoint's error answer.

    ``status_code`` and ``headers`` (``Cache-Control: no-store``, ``Retry-After`` on 503) are
    those of :func:`chatauth.responses.error_answer`; ``detail`` is ``{"code", "message"}``,
    so FastAPI's default handler answers ``{"detail": {"code", "message"}}``. Register
    :func:`chatauth_exception_handler` to answer ``{"error": {"code", "message"}}`` exactly
    like the token endpoint.

    Attributes:
        body: the token endpoint's JSON body, ``{"error": {"code", "message"}}``.
        error: the :class:`~chatauth.ChatAuthError` behind it.
    """

    def __init__(self, error: ChatAuthError) -> None:
        status, body, headers = error_answer(error)
        super().__init__(status_code=status, detail=body["error"], headers=headers)
        self.body = body
        self.error = error


async def chatauth_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    """Answer a :class:`ChatAuthHTTPException` with the token endpoint's exact JSON.

    ``app.add_exception_handler(ChatAuthHTTPException, chatauth_exception_handler)``.
    """
    assert isinstance(exc, ChatAuthHTTPException)
    return JSONResponse(exc.body, status_code=exc.status_code, headers=exc.headers)


async def current_chat(connection: HTTPConnection) -> ChatSession:
    """Dependency: the logged-in user's :class:`~chatauth.ChatSession`.

    Raises:
        ChatAuthHTTPException: 401 without an app login, 422 for a UID the provider refuses,
            503 with ``Retry-After`` when the provider or the store is down, 502/500 for a
            provider refusal or a misconfiguration.
    """
    try:
        return await get_chat(connection)
    except ChatAuthError as exc:
        raise ChatAuthHTTPException(exc) from exc


#: ``chat: CurrentChat`` in a path operation's signature is ``Depends(current_chat)``.
CurrentChat = Annotated[ChatSession, Depends(current_chat)]


def chat_router(prefix: str = "/chat") -> APIRouter:
    """An ``APIRouter`` with ``GET {prefix}/token`` (DESIGN §5), ``POST
    {prefix}/token/refresh``, ``GET {prefix}/chatauth.js`` and the configured provider's
    own endpoints (``{prefix}/{path}``), for ``app.include_router``."""
    router = APIRouter(prefix=prefix.rstrip("/"), tags=["chat"])
    router.add_api_route(
        "/token",
        token_endpoint,
        methods=["GET"],
        name="chatauth:token",
        summary="The logged-in user's chat token",
        response_class=JSONResponse,
    )
    router.add_api_route(
        "/token/refresh",
        refresh_endpoint,
        methods=["POST"],
        name="chatauth:refresh",
        summary="Replace the chat token the chat SDK rejected",
        response_class=JSONResponse,
    )
    router.add_api_route(
        "/chatauth.js",
        script_endpoint,
        methods=["GET"],
        name="chatauth:script",
        include_in_schema=False,
    )
    router.add_api_route(
        "/{path:path}",
        provider_endpoint,
        methods=METHODS,
        name="chatauth:endpoint",
        include_in_schema=False,
        response_class=JSONResponse,
    )
    return router
