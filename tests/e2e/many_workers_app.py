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

Every response carries ``X-Worker-Pid`` so the test can see which process answered. With
``MANY_WORKERS_ARRIVALS`` (a ``redis://`` URL) and ``MANY_WORKERS_ARRIVALS_KEY`` set, each worker
also counts the token requests it receives, as they arrive, in that Redis hash (field: its PID),
so the test can see which processes have requests in flight while the provider call is held.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

import redis.asyncio
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


class CountArrivals:
    """TEST APP ONLY: ``HINCRBY <key> <pid> 1`` for each token request as it arrives, before
    chatauth sees it (see the module docstring)."""

    url = os.environ.get("MANY_WORKERS_ARRIVALS")
    key = os.environ.get("MANY_WORKERS_ARRIVALS_KEY")
    client: redis.asyncio.Redis | None = None

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.url and self.key and scope["type"] == "http" and scope["path"] == "/chat/token":
            if CountArrivals.client is None:
                # A few connections shared by the whole burst; requests queue for them.
                pool = redis.asyncio.BlockingConnectionPool.from_url(
                    self.url, max_connections=8, timeout=60
                )
                CountArrivals.client = redis.asyncio.Redis(connection_pool=pool)
            await CountArrivals.client.hincrby(self.key, self.pid, 1)
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await chatauth.aclose()
    if CountArrivals.client is not None:
        await CountArrivals.client.aclose(close_connection_pool=True)


app = Starlette(
    routes=[
        Route("/page", page),
        Route("/logout", logout, methods=["POST"]),
        *chat_routes(),
    ],
    middleware=[
        Middleware(WorkerPid),
        Middleware(CountArrivals),
        Middleware(ChatAuthMiddleware, chatauth=chatauth, user_getter=header_user),
    ],
    lifespan=lifespan,
)
