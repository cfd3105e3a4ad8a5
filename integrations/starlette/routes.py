"""The chat routes for Starlette: the token endpoint of DESIGN §5 (``GET <prefix>/token``)
and whatever endpoints the configured provider declares (``<prefix>/<path>``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from chatauth.bodies import ARequestBody
from chatauth.responses import Answer, aendpoint_answer, atoken_answer

from .chat import _chat

__all__ = ["chat_routes", "provider_endpoint", "token_answer", "token_endpoint"]

# The provider endpoint answers every method itself (405 for the wrong one).
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _response(answer: Answer) -> JSONResponse:
    status, body, headers = answer
    return JSONResponse(body, status_code=status, headers=headers)


async def token_answer(request: Request) -> Answer:
    """``(status, body, headers)`` for the logged-in user's chat session (or the error),
    from :func:`chatauth.responses.atoken_answer`."""
    return await atoken_answer(_chat(request).get)


async def token_endpoint(request: Request) -> JSONResponse:
    """``GET /chat/token``: the session JSON, or the error JSON with its status.

    200 ``{"provider", "uid", "token", "expires_at", "client"}``; 401 without an app login;
    422 for a UID the provider refuses; 503 with ``Retry-After`` (seconds) when the provider
    or the token store is down; always ``Cache-Control: no-store`` and ``Vary: Cookie``.
    """
    return _response(await token_answer(request))


async def provider_endpoint(request: Request) -> JSONResponse:
    """``<prefix>/<path>``: an endpoint the configured provider declares, answered by the core
    (:func:`chatauth.responses.aendpoint_answer`); 404 where it declares none."""
    chatauth = _chat(request).chatauth
    path = request.path_params["path"]
    body = ARequestBody(
        request.headers.get("content-type"),
        request.headers.get("content-length"),
        request.stream(),  # left after the core's cap, never request.body()'s whole upload
    )
    return _response(await aendpoint_answer(chatauth, path, request.method, body))


def chat_routes(prefix: str = "/chat") -> list[BaseRoute]:
    """The chat routes to add to your app: ``GET {prefix}/token`` (named ``chatauth:token``)
    and ``{prefix}/{path}`` for the provider's own endpoints (named ``chatauth:endpoint``).

    ::

        app = Starlette(routes=[..., *chat_routes()], middleware=[...])
    """
    root = prefix.rstrip("/")
    return [
        Route(f"{root}/token", token_endpoint, methods=["GET"], name="chatauth:token"),
        Route(
            f"{root}/{{path:path}}", provider_endpoint, methods=METHODS, name="chatauth:endpoint"
        ),
    ]
