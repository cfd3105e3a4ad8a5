"""The token endpoint of DESIGN §5 for Starlette: ``GET <prefix>/token``."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from chatauth.errors import ChatAuthError
from chatauth.responses import Answer, error_answer, session_answer

from .middleware import get_chat

__all__ = ["chat_routes", "token_answer", "token_endpoint"]

logger = logging.getLogger("chatauth.integrations.starlette")


async def token_answer(request: Request) -> Answer:
    """``(status, body, headers)`` for the logged-in user's chat session (or the error).

    Only the user logged in on ``request`` gets a token: nothing in the request names a user.
    """
    try:
        session = await get_chat(request)
    except ChatAuthError as exc:
        status, body, headers = error_answer(exc)
        if status >= 500:
            logger.warning("chatauth token endpoint answered %d (%s)", status, exc.code)
        return status, body, headers
    return session_answer(session)


async def token_endpoint(request: Request) -> JSONResponse:
    """``GET /chat/token``: the session JSON, or the error JSON with its status.

    200 ``{"provider", "uid", "token", "expires_at", "client"}``; 401 without an app login;
    422 for a UID the provider refuses; 503 with ``Retry-After`` (seconds) when the provider
    or the token store is down; always ``Cache-Control: no-store``.
    """
    status, body, headers = await token_answer(request)
    return JSONResponse(body, status_code=status, headers=headers)


def chat_routes(prefix: str = "/chat") -> list[BaseRoute]:
    """The chat routes to add to your app: ``GET {prefix}/token``, named ``chatauth:token``.

    ::

        app = Starlette(routes=[..., *chat_routes()], middleware=[...])
    """
    return [
        Route(
            f"{prefix.rstrip('/')}/token", token_endpoint, methods=["GET"], name="chatauth:token"
        ),
    ]
