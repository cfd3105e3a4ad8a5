"""The apps the benchmark suite compares: each framework's app once bare and once with
chatauth installed as its README says, otherwise identical (same session, same login).

Served by a real server from the command line (``python -m tests.benchmarks.apps <kind>
<port> <variant> <store>``) or called in process. Users log in at ``POST /login/<name>``;
``/plain`` never reads chat, ``/me`` answers the app user's name (the bare app's counterpart
of ``/chat/uid``, which reads the cached chat session and is routed after the same routes as
``/me``: a route table's length is the app's cost, not chatauth's), ``/stream-token`` mints a
Stream token per request with the official ``stream_chat`` SDK (what apps hand-write without
chatauth).
"""

from __future__ import annotations

import sys
import time
from typing import Any

SESSION_SECRET = "benchmark-session-secret-benchmark-session-secret"
JWT_SECRET = "benchmark-jwt-secret-benchmark-jwt-secret-0123456789"
STREAM_KEY = "benchmark-stream-key"
STREAM_SECRET = "benchmark-stream-secret-benchmark-stream-secret"


def chat_settings(store: str) -> dict[str, Any]:
    """The chatauth settings every chat variant gets: the JWT provider over ``store`` (a
    store URL)."""
    return {"PROVIDER": "jwt", "JWT_SECRET": JWT_SECRET, "STORE": store, "UID_MAPPER": "username"}


class PassThrough:
    """A pure ASGI middleware that does nothing: what one more layer costs by itself."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def lazy_session_only() -> type:
    """chatauth's Starlette middleware without its response-start check: it puts the lazy
    chat session in the scope and ``request.state`` and does nothing else, so a session
    cleared without the logout helper keeps its chat session. Not a way to install chatauth:
    the floor rows measure what ``request.state.chat`` alone costs, the part of the
    middleware its API cannot do without."""
    from chatauth.integrations.starlette import ChatAuthMiddleware, LazyChatSession

    class LazySessionOnly(ChatAuthMiddleware):
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            chat = LazyChatSession(self.chatauth, scope, self.user_getter, self.session_key)
            scope["chat"] = scope.setdefault("state", {})["chat"] = chat
            try:
                await self.app(scope, receive, send)
            finally:
                chat.release()

    return LazySessionOnly


def starlette_app(variant: str, store: str = "memory://") -> Any:
    """The Starlette app; ``variant`` is ``"bare"``, ``"chat"``, ``"layer"`` (the bare app
    with a :class:`PassThrough` where chatauth's middleware would be) or ``"lazy"`` (the chat
    app with :func:`lazy_session_only`'s middleware instead of chatauth's)."""
    from starlette.applications import Starlette
    from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from starlette.middleware.sessions import SessionMiddleware
    from starlette.requests import HTTPConnection, Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    class SessionUser(AuthenticationBackend):
        async def authenticate(self, conn: HTTPConnection) -> Any:
            name = conn.session.get("user")
            return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None

    async def login(request: Request) -> PlainTextResponse:
        request.session["user"] = request.path_params["name"]
        return PlainTextResponse("ok")

    async def plain(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"uid": f"user-{request.user.username}"})

    from stream_chat import StreamChat

    stream = StreamChat(api_key=STREAM_KEY, api_secret=STREAM_SECRET)

    async def stream_token(request: Request) -> JSONResponse:
        # The view apps hand-write today: a fresh token per request, nothing cached.
        iat = int(time.time())
        uid = f"user-{request.user.username}"
        token = stream.create_token(uid, exp=iat + 3600, iat=iat)
        return JSONResponse({"uid": uid, "token": token}, headers={"Cache-Control": "no-store"})

    routes = [
        Route("/login/{name}", login, methods=["POST"]),
        Route("/plain", plain),
        Route("/me", me),
        Route("/stream-token", stream_token),
    ]
    middleware = [
        Middleware(SessionMiddleware, secret_key=SESSION_SECRET),
        Middleware(AuthenticationMiddleware, backend=SessionUser()),
    ]
    if variant == "layer":
        middleware.append(Middleware(PassThrough))
    if variant in ("chat", "lazy"):
        from chatauth.integrations.starlette import ChatAuthMiddleware, chat_routes, get_chat

        import chatauth

        async def chat_uid(request: Request) -> JSONResponse:
            # get_chat rather than request.state.chat: the same session, without the State
            # object Starlette makes for request.state (README, "Starlette and FastAPI").
            session = await get_chat(request)
            return JSONResponse({"uid": session.uid})

        # Where /me is in the bare app: both are matched after the same two routes.
        routes.insert(2, Route("/chat/uid", chat_uid))
        routes += chat_routes()
        kind = ChatAuthMiddleware if variant == "chat" else lazy_session_only()
        middleware.append(Middleware(kind, chatauth=chatauth.from_settings(chat_settings(store))))
    return Starlette(routes=routes, middleware=middleware)


def flask_app(variant: str, store: str = "memory://") -> Any:
    """The Flask app (Flask-Login); ``variant`` is ``"bare"`` or ``"chat"``."""
    from flask import Flask, jsonify
    from flask_login import LoginManager, UserMixin, current_user, login_user

    class User(UserMixin):
        def __init__(self, username: str) -> None:
            self.id = self.username = username

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SESSION_SECRET)
    manager = LoginManager(app)
    manager.user_loader(User)

    @app.post("/login/<name>")
    def login(name: str) -> str:
        login_user(User(name))
        return "ok"

    @app.get("/plain")
    def plain() -> str:
        return "ok"

    @app.get("/me")
    def me() -> Any:
        return jsonify(uid=f"user-{current_user.username}")

    if variant == "chat":
        from chatauth.integrations.flask import ChatAuth, current_chat

        app.config.update({f"CHATAUTH_{k}": v for k, v in chat_settings(store).items()})
        ChatAuth(app)

        @app.get("/chat/uid")
        def chat_uid() -> Any:
            return jsonify(uid=current_chat.uid)

    return app


def django_app(variant: str, store: str, directory: str) -> Any:
    """The Django app (sessions in the database, ``django.contrib.auth``); ``variant`` is
    ``"bare"`` or ``"chat"``, ``store`` a store URL or ``"django"`` (the ORM store). Migrates
    its database in ``directory`` and creates the user ``alice``."""
    import django
    from django.conf import settings

    chat = variant == "chat"
    settings.configure(
        SECRET_KEY=SESSION_SECRET,
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            *(["chatauth.integrations.django"] if chat else []),
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            *(["chatauth.integrations.django.middleware.ChatAuthMiddleware"] if chat else []),
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": f"{directory}/django-{variant}.sqlite3",
            }
        },
        CHATAUTH=chat_settings(store),
    )
    django.setup()
    from django.contrib.auth import get_user_model, login
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application
    from django.http import HttpResponse, JsonResponse
    from django.urls import include, path

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    if not user_model.objects.filter(username="alice").exists():
        user_model.objects.create_user("alice", password="wonderland")

    def do_login(request: Any, name: str) -> HttpResponse:
        login(request, user_model.objects.get(username=name))
        return HttpResponse("ok")

    def plain(request: Any) -> HttpResponse:
        return HttpResponse("ok")

    def me(request: Any) -> JsonResponse:
        return JsonResponse({"uid": f"user-{request.user.username}"})

    def chat_uid(request: Any) -> JsonResponse:
        return JsonResponse({"uid": request.chat.uid})

    global urlpatterns
    urlpatterns = [
        path("login/<str:name>", do_login),
        path("plain", plain),
        path("me", me),
    ]
    if chat:
        # Where /me is in the bare app: both are matched after the same two patterns.
        urlpatterns.insert(2, path("chat/uid", chat_uid))
        urlpatterns.append(path("chat/", include("chatauth.integrations.django.urls")))
    from django.views.decorators.csrf import csrf_exempt

    urlpatterns[0] = path("login/<str:name>", csrf_exempt(do_login))
    return get_wsgi_application()


urlpatterns: list[Any] = []


def main(argv: list[str]) -> None:
    """``<starlette|flask|django> <port> <bare|chat> <store URL> [<directory>]``: serve one
    app on 127.0.0.1 with uvicorn (Starlette) or waitress (Flask, Django), one process, until
    terminated."""
    kind, port, variant, store = argv[0], int(argv[1]), argv[2], argv[3]
    if kind == "starlette":
        import uvicorn

        uvicorn.run(
            starlette_app(variant, store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    else:
        import waitress

        app = (
            flask_app(variant, store)
            if kind == "flask"
            else django_app(variant, store, argv[4] if len(argv) > 4 else ".")
        )

        # waitress's default of 4 threads, as in a plain deployment.
        waitress.serve(app, host="127.0.0.1", port=port, _quiet=True)


if __name__ == "__main__":
    main(sys.argv[1:])
