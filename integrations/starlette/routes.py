"""The chat routes for Starlette: the token endpoint of DESIGN §5 (``GET <prefix>/token``)
and whatever endpoints the configured provider declares (``<prefix>/<path>``)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from chatauth.assets import script_answer
from chatauth.bodies import ARequestBody
from chatauth.json_body import json_bytes
from chatauth.responses import Answer, aendpoint_answer, arefresh_answer, atoken_answer

from .chat import _chat

__all__ = [
    "chat_routes",
    "provider_endpoint",
    "refresh_endpoint",
    "script_endpoint",
    "token_answer",
    "token_endpoint",
]

# The provider endpoint answers every method itself (405 for the wrong one).
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _response(answer: Answer, request: Request) -> Response:
    status, body, headers = answer
    session: Any = request.scope.get("session")
    if headers.get("Vary") == "Cookie" and hasattr(session, "mark_accessed"):
        # Starlette >= 1.0's SessionMiddleware adds "Vary: Cookie" to a response whose
        # session was accessed, without merging: let it add the only one.
        session.mark_accessed()
        headers = {k: v for k, v in headers.items() if k != "Vary"}
    # The core's bytes (a cached session's body is encoded once), as JSONResponse would.
    return Response(json_bytes(body), status, headers, media_type="application/json")


async def token_answer(request: Request) -> Answer:
    """``(status, body, headers)`` for the logged-in user's chat session (or the error),
    from :func:`chatauth.responses.atoken_answer`."""
    return await atoken_answer(_chat(request).get)


async def token_endpoint(request: Request) -> Response:
    """``GET /chat/token``: the session JSON, or the error JSON with its status.

    200 ``{"provider", "uid", "token", "expires_at", "client"}``; 401 without an app login;
    422 for a UID the provider refuses; 503 with ``Retry-After`` (seconds) when the provider
    or the token store is down; always ``Cache-Control: no-store`` and ``Vary: Cookie``.
    """
    return _response(await token_answer(request), request)


def _body(request: Request) -> ARequestBody:
    return ARequestBody(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.stream(),  # left after the core's cap, never request.body()'s whole upload
    )


async def refresh_endpoint(request: Request) -> Response:
    """``POST /chat/token/refresh``: replace the token the chat SDK rejected
    (:func:`chatauth.responses.arefresh_answer`); ``application/json`` only (415 otherwise)."""
    return _response(await arefresh_answer(_body(request), _chat(request).refresh), request)


async def script_endpoint(request: Request) -> Response:
    """``GET /chat/chatauth.js``: the SDK glue module (:func:`chatauth.assets.script_answer`)."""
    status, body, headers = script_answer(request.headers.get("if-none-match"))
    return Response(body, status_code=status, headers=headers)


async def provider_endpoint(request: Request) -> Response:
    """``<prefix>/<path>``: an endpoint the configured provider declares, answered by the core
    (:func:`chatauth.responses.aendpoint_answer`); 404 where it declares none."""
    chatauth = _chat(request).chatauth
    path = request.path_params["path"]
    answer = await aendpoint_answer(chatauth, path, request.method, _body(request))
    return _response(answer, request)


def chat_routes(prefix: str = "/chat") -> list[BaseRoute]:
    """The chat routes to add to your app: ``GET {prefix}/token`` (named ``chatauth:token``),
    ``POST {prefix}/token/refresh`` (``chatauth:refresh``), ``GET {prefix}/chatauth.js``
    (``chatauth:script``) and ``{prefix}/{path}`` for the provider's own endpoints (named
    ``chatauth:endpoint``).

    ::

        app = Starlette(routes=[..., *chat_routes()], middleware=[...])
    """
    root = prefix.rstrip("/")
    return [
        Route(f"{root}/token", token_endpoint, methods=["GET"], name="chatauth:token"),
        Route(f"{root}/token/refresh", refresh_endpoint, methods=["POST"], name="chatauth:refresh"),
        Route(f"{root}/chatauth.js", script_endpoint, methods=["GET"], name="chatauth:script"),
        Route(
            f"{root}/{{path:path}}", provider_endpoint, methods=METHODS, name="chatauth:endpoint"
        ),
    ]
