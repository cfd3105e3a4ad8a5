"""The chat routes for Starlette: the token endpoint of DESIGN §5 (``GET <prefix>/token``) and
ChatKitty's session check (``POST <prefix>/chatkitty/verify``)."""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from chatauth.errors import ChatAuthError
from chatauth.responses import Answer, error_answer, session_answer

from .middleware import _chat, get_chat

__all__ = ["chat_routes", "chatkitty_verify_endpoint", "token_answer", "token_endpoint"]

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


async def chatkitty_verify_endpoint(request: Request) -> JSONResponse:
    """``POST /chat/chatkitty/verify``: ChatKitty's "User Attempted Start Session" chat function
    asks whether ``{"username", "authParams"}`` may start a session (docs/providers.md).

    Answered by :func:`chatauth.providers.chatkitty.averify_auth_params`: 200 ``{"allow":
    true}`` for signed, unexpired params of a chat session that has not ended, 403 otherwise;
    404 when the configured provider is not ChatKitty. The caller is ChatKitty's server, not a
    browser, so no app login is involved: the signature is the credential.
    """
    chatauth = _chat(request).chatauth
    if chatauth.provider.name != "chatkitty":
        return JSONResponse({"error": {"code": "ERROR_NOT_FOUND"}}, status_code=404)
    from chatauth.providers.chatkitty import averify_auth_params

    try:
        payload = await request.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return JSONResponse(
            {"error": {"code": "ERROR_BAD_REQUEST", "message": "Expected a JSON object."}},
            status_code=400,
        )
    status, body, headers = await averify_auth_params(chatauth, payload)
    return JSONResponse(body, status_code=status, headers=headers)


def chat_routes(prefix: str = "/chat") -> list[BaseRoute]:
    """The chat routes to add to your app: ``GET {prefix}/token`` (named ``chatauth:token``)
    and ``POST {prefix}/chatkitty/verify`` (named ``chatauth:chatkitty-verify``, 404 unless the
    provider is ChatKitty).

    ::

        app = Starlette(routes=[..., *chat_routes()], middleware=[...])
    """
    return [
        Route(
            f"{prefix.rstrip('/')}/token", token_endpoint, methods=["GET"], name="chatauth:token"
        ),
        Route(
            f"{prefix.rstrip('/')}/chatkitty/verify",
            chatkitty_verify_endpoint,
            methods=["POST"],
            name="chatauth:chatkitty-verify",
        ),
    ]
