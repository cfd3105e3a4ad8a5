"""A tiny Starlette app around ChatAuthMiddleware, and a SQLite store and JWT provider that
count their calls."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from chatauth.integrations.starlette import (
    ChatAuthMiddleware,
    chat_routes,
    end_chat_session,
    get_chat,
)
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from chatauth import ChatAuth, ChatIdentity, ChatToken
from chatauth.http import Flow
from chatauth.providers.jwt import JWTProvider, JWTSigner
from chatauth.stores.sqlite import SQLiteStore

COUNTED = (
    "get",
    "set",
    "pop",
    "pop_user",
    "sessions",
    "_try_lock",
    "_unlock",
    "add_pending",
    "pending",
    "remove_pending",
    "retry_failed",
    "count_pending",
)


class CountingStore(SQLiteStore):
    """A real SQLite store that records every call made to it (from any thread)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: list[str] = []

    def corrupt(self) -> None:
        """Turn the file into garbage: every later call fails as a real SQLite error would."""
        self.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.path.write_bytes(b"this is not a database" * 100)


def _counted(name: str) -> Callable[..., Any]:
    original = getattr(SQLiteStore, name)

    def method(self: CountingStore, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(name)
        return original(self, *args, **kwargs)

    return method


for _name in COUNTED:
    setattr(CountingStore, _name, _counted(_name))


class CountingJWTProvider(JWTProvider):
    """The JWT provider, counting issued tokens."""

    def __init__(self, secret: str) -> None:
        super().__init__(JWTSigner("HS256", secret=secret))
        self.issued = 0

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        self.issued += 1
        return super().issue(identity, ttl)


class SessionBackend(AuthenticationBackend):
    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        name = conn.session.get("username")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


# -- the tiny app --------------------------------------------------------------------------
async def login(request: Request) -> Response:
    request.session["username"] = request.path_params["name"]
    return PlainTextResponse("ok")


async def switch(request: Request) -> Response:
    # Log in as someone else without logging out first (no session.clear()).
    request.session["username"] = request.path_params["name"]
    return PlainTextResponse("ok")


async def plain(request: Request) -> Response:
    chat = request.state.chat
    return JSONResponse(
        {
            "user": request.user.display_name,
            "loaded": chat.is_loaded,
            "same": chat is request.scope["chat"],
        }
    )


async def chat_info(request: Request) -> Response:
    first = await request.state.chat
    second = await get_chat(request)
    third = await request.scope["chat"].get()
    return JSONResponse(
        {
            "uid": first.uid,
            "fingerprint": first.token.fingerprint,
            "memoised": first is second is third,
        }
    )


async def logout(request: Request) -> Response:
    ended = await end_chat_session(request)
    request.session.clear()
    return JSONResponse({"ended": len(ended)})


async def logout_clear_first(request: Request) -> Response:
    request.session.clear()
    ended = await end_chat_session(request)
    return JSONResponse({"ended": len(ended)})


async def clear(request: Request) -> Response:
    request.session.clear()
    return PlainTextResponse("cleared")


async def relogin(request: Request) -> Response:
    # A login view that starts from a clean session (against session fixation).
    request.session.clear()
    request.session["username"] = request.path_params["name"]
    return PlainTextResponse("ok")


async def flash(request: Request) -> Response:
    # Anonymous session data, e.g. a flash message or a cart.
    request.session["flash"] = "hello"
    return PlainTextResponse("ok")


async def take_flash(request: Request) -> Response:
    return PlainTextResponse(str(request.session.pop("flash", "")))


async def logout_with_flash(request: Request) -> Response:
    # Logout that ends the chat session, forgets the user and leaves a message behind.
    ended = await end_chat_session(request)
    request.session.pop("username", None)
    request.session["flash"] = "bye"
    return JSONResponse({"ended": len(ended)})


async def clear_with_flash(request: Request) -> Response:
    request.session.clear()
    request.session["flash"] = "bye"
    return PlainTextResponse("cleared")


async def ws_plain(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"loaded": websocket.state.chat.is_loaded})
    await websocket.close()


async def ws_chat(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        session = await get_chat(websocket)
    except Exception as exc:  # the test reads the code
        await websocket.send_json({"error": getattr(exc, "code", repr(exc))})
    else:
        await websocket.send_json({"uid": session.uid, "fingerprint": session.token.fingerprint})
    await websocket.close()


ROUTES: list[BaseRoute] = [
    Route("/login/{name}", login, methods=["POST"]),
    Route("/switch/{name}", switch, methods=["POST"]),
    Route("/plain", plain),
    Route("/chat-info", chat_info),
    Route("/logout", logout, methods=["POST"]),
    Route("/logout-clear-first", logout_clear_first, methods=["POST"]),
    Route("/clear", clear, methods=["POST"]),
    Route("/relogin/{name}", relogin, methods=["POST"]),
    Route("/flash", flash, methods=["POST"]),
    Route("/take-flash", take_flash, methods=["POST"]),
    Route("/logout-with-flash", logout_with_flash, methods=["POST"]),
    Route("/clear-with-flash", clear_with_flash, methods=["POST"]),
    *chat_routes("/chat"),
    WebSocketRoute("/ws-plain", ws_plain),
    WebSocketRoute("/ws-chat", ws_chat),
]


def make_app(chat: ChatAuth, **middleware_kwargs: Any) -> Starlette:
    """SessionMiddleware -> AuthenticationMiddleware -> ChatAuthMiddleware -> routes."""
    return Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(16)),
            Middleware(AuthenticationMiddleware, backend=SessionBackend()),
            Middleware(ChatAuthMiddleware, chatauth=chat, **middleware_kwargs),
        ],
    )


#: ``browser()`` -> a new client with its own cookie jar (one "browser session").
Browser = Callable[[], httpx.AsyncClient]


@contextlib.contextmanager
def serve_app(app: Any, *, timeout: float = 15.0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1 and a free port, in a thread, for the
    ``with`` block; yields the base URL. Unlike ``chatauth.testing.server.serve`` it runs the
    app's lifespan, so an app that closes its ``ChatAuth`` on shutdown does so on the server's
    own event loop (httpx's async connections belong to the loop that opened them)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    # Set once start-up is over, listening or not, or once the server thread has ended.
    settled = threading.Event()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            try:
                await super().startup(sockets=sockets)
            finally:
                settled.set()

    server = Server(config)

    def run() -> None:
        try:
            server.run(sockets=[sock])
        finally:
            settled.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        if not settled.wait(timeout) or not server.started:
            raise RuntimeError(f"uvicorn did not start on port {port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        if thread.is_alive():
            raise RuntimeError(f"uvicorn on port {port} did not stop")


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def run_asgi(
    app: Any, scope: dict[str, Any], incoming: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Drive ``app`` with one connection: feed ``incoming`` messages, then disconnect; return
    what it sent. (Starlette's TestClient needs httpx2 from Starlette 1.x on.)"""
    queue = list(incoming)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        kind = "websocket.disconnect" if scope["type"] == "websocket" else "http.disconnect"
        return {"type": kind, "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"asgi": {"version": "3.0"}, **scope}, receive, send)
    return sent


async def websocket_json(app: Any, path: str, cookies: httpx.Cookies) -> Any:
    """Open a WebSocket on ``path`` with the browser's cookies; the first JSON it sends."""
    import json

    cookie = "; ".join(f"{name}={value}" for name, value in cookies.items())
    scope = {
        "type": "websocket",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
        "headers": [(b"host", b"testserver"), (b"cookie", cookie.encode())],
    }
    sent = await run_asgi(app, scope, [{"type": "websocket.connect"}])
    assert sent[0]["type"] == "websocket.accept", sent
    return json.loads(sent[1]["text"])


def header_user_app(chat: ChatAuth) -> Starlette:
    """No SessionMiddleware: a token-auth API whose user comes from the ``x-test-user`` header
    (trusted here; a real app authenticates it)."""
    return Starlette(
        routes=chat_routes(),
        middleware=[
            Middleware(
                ChatAuthMiddleware,
                chatauth=chat,
                user_getter=lambda conn: ChatIdentity(conn.headers["x-test-user"]),
            )
        ],
    )
