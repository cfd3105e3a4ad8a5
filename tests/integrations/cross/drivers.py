"""One small app per framework, driven through its own test client: the cross-framework
suite runs every scenario through each and expects the same answers.

Each app is what a user of the adapter writes: the framework's session and login, the
adapter installed as its README says, the chat routes under ``/chat``, a login route and the
framework's own logout. Users are ``alice`` and ``bob`` (chat UIDs ``user-alice``,
``user-bob`` through ``UID_MAPPER = "username"`` on every framework).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import select
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from chatauth.service import ChatAuth as ChatAuthService
from chatauth.stores.sqlite import SQLiteStore
from chatauth.testing.chatkitty import (
    DEFAULT_API_KEY,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    ChatKittyEmulator,
)
from chatauth.testing.cometchat import DEFAULT_API_KEY as COMETCHAT_API_KEY
from chatauth.testing.cometchat import DEFAULT_APP_ID, CometChatEmulator
from tests.integrations.starlette.helpers import serve_app

USERS = ("alice", "bob")
PASSWORD = "cross-password"
#: The headers the suite compares (lower case); others are each framework's own business.
COMPARED = (
    "content-type",
    "cache-control",
    "pragma",
    "vary",
    "retry-after",
    "allow",
    "etag",
    "x-content-type-options",
)


class BreakableStore(SQLiteStore):
    """A real SQLite store whose file can be turned into garbage: every later call fails as
    with a broken disk (``StoreUnavailableError``)."""

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Another process's write transaction, held until the block ends: every write of
        the store waits out its ``timeout`` and fails (``StoreUnavailableError``); reads go
        on (WAL). Unlike :meth:`corrupt`, the store answers again afterwards, data intact."""
        holder = sqlite3.connect(self.path, isolation_level=None)
        try:
            holder.execute("BEGIN IMMEDIATE")
            yield
        finally:
            holder.rollback()
            holder.close()

    def tokens(self, uid: str) -> list[str]:
        """The token values the store holds for ``uid`` (any app session)."""
        return [t.value for t in self.sessions(uid=uid)]

    def corrupt(self) -> None:
        self.close()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        self.path.write_bytes(b"this is not a database" * 100)


def cometchat_settings(emulator: CometChatEmulator) -> dict[str, Any]:
    """The same apps on CometChat, whose logout revokes at the provider (ChatKitty's tokens
    are verified against the store instead: nothing to revoke)."""
    return {
        "PROVIDER": "cometchat",
        "COMETCHAT_APP_ID": DEFAULT_APP_ID,
        "COMETCHAT_API_KEY": COMETCHAT_API_KEY,
        "COMETCHAT_BASE_URL": emulator.base_url,
        "UID_MAPPER": "username",
    }


def chat_settings(emulator: ChatKittyEmulator) -> dict[str, Any]:
    """The chatauth settings every app gets (its framework's own way)."""
    assert emulator.url is not None
    return {
        "PROVIDER": "chatkitty",
        "CHATKITTY_API_KEY": DEFAULT_API_KEY,
        "CHATKITTY_CLIENT_ID": DEFAULT_CLIENT_ID,
        "CHATKITTY_CLIENT_SECRET": DEFAULT_CLIENT_SECRET,
        "CHATKITTY_BASE_URL": emulator.base_url,
        "CHATKITTY_AUTH_URL": emulator.url + "/oauth/token",
        "UID_MAPPER": "username",
    }


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the suite compares of an answer: status, body (decoded JSON, or the bytes of any
    other type), the :data:`COMPARED` headers."""

    status: int
    body: Any
    headers: dict[str, str]


def reply(status: int, body: bytes, headers: Mapping[str, str]) -> Reply:
    lower = {k.lower(): v for k, v in headers.items()}
    is_json = lower.get("content-type", "").startswith("application/json")
    return Reply(
        status, json.loads(body) if is_json else body, {k: lower[k] for k in COMPARED if k in lower}
    )


#: The media type a browser's request body is sent as unless told otherwise.
JSON = "application/json"


class Browser:
    """One browser (one cookie jar) on a driver's app."""

    def login(self, user: str) -> None:
        raise NotImplementedError

    def logout(self) -> None:
        raise NotImplementedError

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str | None = JSON,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """One request; ``headers`` are sent besides ``Content-Type`` (``If-None-Match`` ...)."""
        raise NotImplementedError


class Upload:
    """A request body of ``total`` spaces, made as it is read (a 100 MB upload costs no
    memory); ``taken`` counts the bytes the app pulled from it."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.taken = 0

    def read(self, n: int = -1) -> bytes:
        left = self.total - self.taken
        size = left if n is None or n < 0 else min(n, left)
        self.taken += size
        return b" " * size

    def readline(self, limit: int = -1) -> bytes:  # WSGI asks for it; never used here
        return self.read(limit)


class Driver:
    """A framework's app, built from the settings over ``store``."""

    name: str
    #: Whether the framework's login itself ends the previous user's chat session (a login
    #: signal), rather than the new user's first chat use.
    ends_at_login = True

    @property
    def service(self) -> ChatAuthService:
        """The app's core service (for the sweep, as its command would run it)."""
        raise NotImplementedError

    def browser(self) -> Browser:
        raise NotImplementedError

    def upload(self, path: str, total: int, *, declared: bool) -> tuple[Reply, int]:
        """POST ``total`` bytes of JSON-typed body to ``path``, with their ``Content-Length``
        (``declared``) or without one (chunked where the server supports it).

        Returns:
            The answer and how many bytes of the body the app read before answering.
        """
        raise NotImplementedError


# -- Starlette --------------------------------------------------------------------------------
class StarletteDriver(Driver):
    name = "starlette"
    # Starlette has no login signal: the hand-over happens at the new user's first chat use.
    ends_at_login = False

    def __init__(self, settings: dict[str, Any], store: SQLiteStore) -> None:
        from chatauth.integrations.starlette import (
            ChatAuthMiddleware,
            chat_routes,
            end_chat_session,
        )
        from starlette.applications import Starlette
        from starlette.authentication import (
            AuthCredentials,
            AuthenticationBackend,
            SimpleUser,
        )
        from starlette.middleware import Middleware
        from starlette.middleware.authentication import AuthenticationMiddleware
        from starlette.middleware.sessions import SessionMiddleware
        from starlette.requests import HTTPConnection, Request
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        import chatauth

        class SessionUser(AuthenticationBackend):
            async def authenticate(self, conn: HTTPConnection) -> Any:
                name = conn.session.get("user")
                return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

        async def login(request: Request) -> PlainTextResponse:
            request.session["user"] = request.path_params["name"]
            return PlainTextResponse("ok")

        async def logout(request: Request) -> PlainTextResponse:
            await end_chat_session(request)
            request.session.clear()
            return PlainTextResponse("ok")

        @contextlib.asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[None]:
            yield
            # On the server's own loop: httpx's async connections belong to it.
            await self._service.aclose()

        self._service = chatauth.from_settings(settings, store=store)
        self.app = Starlette(
            routes=[
                Route("/login/{name}", login, methods=["POST"]),
                Route("/logout", logout, methods=["POST"]),
                *chat_routes(),
            ],
            middleware=[
                Middleware(SessionMiddleware, secret_key="cross-framework-session-secret"),
                Middleware(AuthenticationMiddleware, backend=SessionUser()),
                Middleware(ChatAuthMiddleware, chatauth=self._service),
            ],
            lifespan=lifespan,
        )
        # A real uvicorn on loopback: Starlette's TestClient is on its way out.
        self._stack = contextlib.ExitStack()
        self.url = self._stack.enter_context(serve_app(self._counting(self.app)))

    def _counting(self, app: Any) -> Any:
        """``app`` behind a count of the request body bytes it receives (:meth:`upload`)."""
        self.received = 0
        self.pieces: list[int] = []

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            async def counting_receive() -> Any:
                message = await receive()
                size = len(message.get("body", b""))
                self.received += size
                if size:
                    self.pieces.append(size)
                return message

            await app(scope, counting_receive, send)

        return counted

    def upload(self, path: str, total: int, *, declared: bool) -> tuple[Reply, int]:
        """Over a raw socket: the body is sent until the answer arrives (or all of it is).
        :attr:`pieces` then holds the size of each body message the app received: uvicorn
        puts whatever arrived since the app's last ``receive()`` into one message, so on a
        busy machine a message may carry several of the client's 64 KiB chunks."""
        self.received = 0
        self.pieces = []
        address = urlsplit(self.url)
        framing = f"Content-Length: {total}" if declared else "Transfer-Encoding: chunked"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: {JSON}\r\n"
            f"{framing}\r\nConnection: close\r\n\r\n"
        )
        piece = b" " * 65_536
        chunk = piece if declared else b"10000\r\n" + piece + b"\r\n"
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            sock.sendall(head.encode())
            pending, sent = b"", 0
            while True:
                readable, writable, _ = select.select([sock], [sock], [], 30)
                if readable or not writable:
                    break  # the answer came (or nothing moves: read what there is)
                if not pending:
                    if sent >= total:  # all of it sent: end it, then wait for the answer
                        sock.sendall(b"" if declared else b"0\r\n\r\n")
                        break
                    pending, sent = chunk, sent + len(piece)
                try:
                    pending = pending[sock.send(pending) :]
                except OSError:  # the server closed its side once it had answered
                    break
            raw = b""
            with contextlib.suppress(OSError):
                while part := sock.recv(65_536):
                    raw += part
        head_part, _, body = raw.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("content-length", headers.get("Content-Length", "0")))
        return reply(status, body[:length], headers), self.received

    @property
    def service(self) -> ChatAuthService:
        return self._service

    def browser(self) -> Browser:
        client = self._stack.enter_context(httpx.Client(base_url=self.url, timeout=30.0))

        class StarletteBrowser(Browser):
            def login(self, user: str) -> None:
                assert client.post(f"/login/{user}").status_code == 200

            def logout(self) -> None:
                assert client.post("/logout").status_code == 200

            def request(
                self,
                method: str,
                path: str,
                body: bytes | None = None,
                content_type: str | None = JSON,
                headers: Mapping[str, str] | None = None,
            ) -> Reply:
                sent = dict(headers or {})
                if body and content_type:
                    sent["Content-Type"] = content_type
                answer = client.request(method, path, content=body, headers=sent)
                return reply(answer.status_code, answer.content, answer.headers)

        return StarletteBrowser()

    def close(self) -> None:
        self._stack.close()


# -- Flask --------------------------------------------------------------------------------------
class FlaskDriver(Driver):
    name = "flask"

    def __init__(self, settings: dict[str, Any], store: SQLiteStore) -> None:
        from chatauth.integrations.flask import ChatAuth
        from flask import Flask
        from flask_login import LoginManager, UserMixin, login_user, logout_user

        class User(UserMixin):
            def __init__(self, username: str) -> None:
                self.id = self.username = username

        app = Flask(__name__, instance_path=str(store.path.parent / "instance"))
        app.config.update(
            SECRET_KEY="cross-framework-session-secret",
            **{f"CHATAUTH_{key}": value for key, value in settings.items()},
        )
        manager = LoginManager(app)
        manager.user_loader(lambda name: User(name) if name in USERS else None)

        @app.post("/login/<name>")
        def login(name: str) -> str:
            login_user(User(name))
            return "ok"

        @app.post("/logout")
        def logout() -> str:
            logout_user()
            return "ok"

        ChatAuth(store=store).init_app(app)
        self.app = app

    @property
    def service(self) -> ChatAuthService:
        service: ChatAuthService = self.app.extensions["chatauth"].service
        return service

    def browser(self) -> Browser:
        client = self.app.test_client()

        class FlaskBrowser(Browser):
            def login(self, user: str) -> None:
                assert client.post(f"/login/{user}").status_code == 200

            def logout(self) -> None:
                assert client.post("/logout").status_code == 200

            def request(
                self,
                method: str,
                path: str,
                body: bytes | None = None,
                content_type: str | None = JSON,
                headers: Mapping[str, str] | None = None,
            ) -> Reply:
                answer = client.open(
                    path,
                    method=method,
                    data=body,
                    content_type=content_type,
                    headers=dict(headers or {}),
                )
                return reply(answer.status_code, answer.get_data(), answer.headers)

        return FlaskBrowser()

    def upload(self, path: str, total: int, *, declared: bool) -> tuple[Reply, int]:
        """Through the test client's WSGI environ: an undeclared length is a chunked upload
        (``wsgi.input_terminated``, as Werkzeug's and gunicorn's servers set it)."""
        body = Upload(total)
        environ: dict[str, Any] = {"wsgi.input": body, "CONTENT_TYPE": JSON}
        if declared:
            environ["CONTENT_LENGTH"] = str(total)
        else:
            environ["wsgi.input_terminated"] = True
        answer = self.app.test_client().open(path, method="POST", environ_overrides=environ)
        return reply(answer.status_code, answer.get_data(), answer.headers), body.taken

    def close(self) -> None:
        self.app.extensions["chatauth"].close()


# -- Django -------------------------------------------------------------------------------------
class DjangoDriver(Driver):
    name = "django"

    def __init__(self, settings: dict[str, Any], store: SQLiteStore, *, django: Any) -> None:
        from django.contrib.auth import get_user_model

        # The test project (tests/integrations/django): its login and logout views are
        # Django's own LoginView and LogoutView.
        django.CHATAUTH = {**settings, "STORE": store}
        for name in USERS:
            get_user_model().objects.create_user(name, password=PASSWORD)

    @property
    def service(self) -> ChatAuthService:
        from chatauth.integrations.django import get_service

        return get_service()

    def browser(self) -> Browser:
        from django.test import Client

        client = Client()

        class DjangoBrowser(Browser):
            def login(self, user: str) -> None:
                answer = client.post("/accounts/login/", {"username": user, "password": PASSWORD})
                assert answer.status_code == 302, answer.status_code

            def logout(self) -> None:
                assert client.post("/accounts/logout/").status_code == 302

            def request(
                self,
                method: str,
                path: str,
                body: bytes | None = None,
                content_type: str | None = JSON,
                headers: Mapping[str, str] | None = None,
            ) -> Reply:
                answer = client.generic(
                    method,
                    path,
                    body or b"",
                    content_type=content_type or "",
                    headers=dict(headers or {}),
                )
                return reply(answer.status_code, answer.content, dict(answer.items()))

        return DjangoBrowser()

    def upload(self, path: str, total: int, *, declared: bool) -> tuple[Reply, int]:
        """Through the test client's WSGI environ. Django's WSGI request reads no further
        than ``CONTENT_LENGTH`` (nothing without one), so an undeclared upload is empty."""
        from django.test import Client

        body = Upload(total)
        environ: dict[str, Any] = {"wsgi.input": body, "CONTENT_TYPE": JSON}
        environ["CONTENT_LENGTH"] = str(total) if declared else ""
        answer = Client().generic("POST", path, b"", **environ)
        return reply(answer.status_code, answer.content, dict(answer.items())), body.taken

    def close(self) -> None:
        from chatauth.integrations.django.conf import reset

        reset()


def _starlette(settings: dict[str, Any], store: SQLiteStore) -> Iterator[Driver]:
    driver = StarletteDriver(settings, store)
    try:
        yield driver
    finally:
        driver.close()


def _flask(settings: dict[str, Any], store: SQLiteStore) -> Iterator[Driver]:
    driver = FlaskDriver(settings, store)
    try:
        yield driver
    finally:
        driver.close()


def _django(
    settings: dict[str, Any], store: SQLiteStore, *, settings_fixture: Any
) -> Iterator[Driver]:
    driver = DjangoDriver(settings, store, django=settings_fixture)
    try:
        yield driver
    finally:
        driver.close()


DriverFactory = Callable[..., contextlib.AbstractContextManager[Driver]]
DRIVERS: dict[str, DriverFactory] = {
    "django": contextlib.contextmanager(_django),
    "flask": contextlib.contextmanager(_flask),
    "starlette": contextlib.contextmanager(_starlette),
}
