"""The sample app: ``create_app(settings)`` builds it for any chatauth settings."""

from __future__ import annotations

import contextlib
import html
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from chatauth.integrations.starlette import ChatAuthMiddleware, chat_routes, end_chat_session
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
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

import chatauth
from chatauth.config import normalize_settings
from sample_projects.csrf import FIELD, CSRFTokens

__all__ = ["DEMO_USERS", "DemoUser", "create_app"]

STATIC = Path(__file__).parent / "static"

#: username -> password. It is a demo: the login page shows them.
DEMO_USERS: dict[str, str] = {"alice": "wonderland", "bob": "builder", "carol": "singer"}


class DemoUser(SimpleUser):
    """A demo user; chatauth's default mapper makes the UID ``"user-" + username``."""

    @property
    def display_name(self) -> str:
        return self.username.title()


class SessionBackend(AuthenticationBackend):
    """The user whose name the login view put in ``request.session["username"]``."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = users

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        username = conn.session.get("username")
        if isinstance(username, str) and username in self.users:
            return AuthCredentials(["authenticated"]), DemoUser(username)
        return None


def _settings(settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The chatauth settings with the offline defaults filled in."""
    cfg = {str(k).lower(): v for k, v in (settings or {}).items()}
    if settings is None:
        cfg = normalize_settings(os.environ, "CHATAUTH_")
    cfg.setdefault("provider", "jwt")
    if cfg["provider"] == "jwt" and not cfg.get("jwt_private_key"):
        # A fresh secret per run: tokens die with the process, which suits a demo.
        cfg.setdefault("jwt_secret", secrets.token_urlsafe(32))
    cfg.setdefault(
        "store", f"sqlite:///{Path(tempfile.gettempdir()) / 'chatauth-starlette-sample.sqlite3'}"
    )
    cfg.setdefault("name_attribute", "display_name")
    return cfg


def _page(
    title: str, body: str, user: BaseUser | None = None, csrf_field: str = ""
) -> HTMLResponse:
    who = ""
    if user is not None and user.is_authenticated:
        who = (
            f'<form method="post" action="/logout" class="who">{csrf_field}Logged in as '
            f"<b>{html.escape(user.display_name)}</b> "
            f'<button type="submit">Log out</button></form>'
        )
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} - chatauth Starlette sample</title>"
        '<link rel="icon" href="/static/favicon.svg">'
        '<link rel="stylesheet" href="/static/chat.css">'
        '<link rel="stylesheet" href="/static/style.css"></head><body>'
        f'<header><a href="/">chatauth Starlette sample</a> {who}</header>'
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )


def create_app(
    settings: Mapping[str, Any] | None = None,
    *,
    users: Mapping[str, str] | None = None,
    session_secret: str | None = None,
) -> Starlette:
    """Build the sample app.

    Args:
        settings: chatauth settings (``PROVIDER``, ``STORE``, ``MATRIX_*``, ...; any case).
            ``None`` reads the ``CHATAUTH_*`` environment variables. Missing values default to
            the JWT provider with a random secret and a SQLite file in the temp directory.
        users: username -> password of the demo users (default :data:`DEMO_USERS`).
        session_secret: the session cookie's signing key (default ``$SESSION_SECRET`` or a
            random one per run).

    Raises:
        chatauth.ConfigurationError: the settings are incomplete or malformed.
    """
    accounts = dict(DEMO_USERS if users is None else users)
    chat = chatauth.from_settings(_settings(settings))
    secret = session_secret or os.environ.get("SESSION_SECRET") or secrets.token_urlsafe(32)
    csrf = CSRFTokens(secret)

    def page(request: Request, title: str, body: str) -> HTMLResponse:
        field = csrf.hidden_field(request.session) if request.user.is_authenticated else ""
        return _page(title, body, request.user, field)

    def forged(form: Any, request: Request) -> Response | None:
        if csrf.is_valid(request.session, form.get(FIELD)):
            return None
        return HTMLResponse(
            "The form has expired or did not come from this site: reload it.", status_code=403
        )

    async def home(request: Request) -> Response:
        # Never touches the chat session: it keeps answering while the provider is down.
        if request.user.is_authenticated:
            body = '<p><a href="/chat">Open the chat page</a></p>'
        else:
            body = '<p><a href="/login">Log in</a> to get a chat session.</p>'
        body += f"<p>Chat provider: <code>{html.escape(chat.provider.name)}</code></p>"
        return page(request, "Home", body)

    async def login(request: Request) -> Response:
        error = ""
        if request.method == "POST":
            form = await request.form()
            if refused := forged(form, request):
                return refused
            username, password = str(form.get("username", "")), str(form.get("password", ""))
            expected = accounts.get(username)
            if expected is not None and secrets.compare_digest(expected, password):
                # A fresh app session per login; the middleware ends the previous user's chat.
                request.session.clear()
                request.session["username"] = username
                return RedirectResponse("/chat", status_code=303)
            error = '<p class="error">Unknown user or wrong password.</p>'
        rows = "".join(
            f"<tr><td><code>{html.escape(u)}</code></td><td><code>{html.escape(p)}</code></td></tr>"
            for u, p in accounts.items()
        )
        body = (
            f"{error}<form method=post action=/login>{csrf.hidden_field(request.session)}"
            "<label>Username <input name=username autocomplete=username></label> "
            "<label>Password <input name=password type=password></label> "
            "<button type=submit>Log in</button></form>"
            "<p>Demo users (it is a demo, so here are the passwords):</p>"
            f"<table><tr><th>user</th><th>password</th></tr>{rows}</table>"
        )
        return page(request, "Log in", body)

    async def logout(request: Request) -> Response:
        if refused := forged(await request.form(), request):
            return refused
        await end_chat_session(request)
        request.session.clear()
        return RedirectResponse("/", status_code=303)

    async def chat_page(request: Request) -> Response:
        if not request.user.is_authenticated:
            return RedirectResponse("/login", status_code=303)
        # The page holds no token: chat.js (sample_projects/shared, served under /static)
        # fetches it from the token endpoint and renders the session into #chat.
        token_url = html.escape(str(request.url_for("chatauth:token").path))
        body = (
            f'<div id=chat data-token-url="{token_url}" data-login-url="/login">'
            "<p>Fetching your chat session...</p></div>"
            '<script src="/static/chat.js"></script>'
        )
        return page(request, "Chat", body)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await chat.aclose()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/chat", chat_page),
            *chat_routes("/chat"),
            # This app's files, then the chat.js/chat.css/favicon shared by the three samples.
            Mount(
                "/static",
                StaticFiles(directory=STATIC, packages=[("sample_projects", "shared")]),
                name="static",
            ),
        ],
        middleware=[
            # same_site="lax" is SessionMiddleware's default; spelt out, as the CSRF
            # protection counts on it.
            Middleware(SessionMiddleware, secret_key=secret, same_site="lax"),
            Middleware(AuthenticationMiddleware, backend=SessionBackend(accounts)),
            Middleware(ChatAuthMiddleware, chatauth=chat),
        ],
        lifespan=lifespan,
    )
    app.state.chatauth = chat
    return app
