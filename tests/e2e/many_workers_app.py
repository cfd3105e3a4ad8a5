"""The app tests/e2e/test_many_workers.py runs under ``uvicorn --workers 4``.

A tiny Starlette app wired like a real one through chatauth's Starlette adapter: settings from
``CHATAUTH_*`` environment variables (``STORE`` is a ``redis://`` URL, so all four worker
processes share one store), the token route from ``chat_routes()``, a logout view calling
``end_chat_session``, and a page that never touches chat.

The logged-in user comes from the ``X-Test-User`` header. That is for this test app only: the
test plays the part of an authentication layer it does not need to exercise. A real app
takes the user from its session (``AuthenticationMiddleware``), never from a header a client
can set. There is no ``SessionMiddleware``, so chatauth keeps one chat session per user, the
key the test's concurrent first requests all race for.

Every response carries ``X-Worker-Pid`` so the test can see which process answered.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from chatauth.integrations.starlette import ChatAuthMiddleware, chat_routes, end_chat_session
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatauth import ChatIdentity, from_settings
from chatauth.config import normalize_settings

chatauth = from_settings(normalize_settings(os.environ, "CHATAUTH_"))


def header_user(conn: HTTPConnection) -> ChatIdentity | None:
    """TEST APP ONLY: the user named by ``X-Test-User`` (see the module docstring)."""
    uid = conn.headers.get("x-test-user")
    return ChatIdentity(uid) if uid else None


async def page(request: Request) -> JSONResponse:
    return JSONResponse({"page": "ok"})


async def logout(request: Request) -> JSONResponse:
    ended = await end_chat_session(request)
    return JSONResponse({"ended": len(ended)})


class WorkerPid:
    """Adds ``X-Worker-Pid`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid()).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_pid(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-worker-pid", self.pid)]
            await send(message)

        await self.app(scope, receive, send_with_pid if scope["type"] == "http" else send)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await chatauth.aclose()


app = Starlette(
    routes=[
        Route("/page", page),
        Route("/logout", logout, methods=["POST"]),
        *chat_routes(),
    ],
    middleware=[
        Middleware(WorkerPid),
        Middleware(ChatAuthMiddleware, chatauth=chatauth, user_getter=header_user),
    ],
    lifespan=lifespan,
)
