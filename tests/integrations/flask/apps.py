"""Small Flask apps for the adapter tests: Flask-Login users, a counting provider, a server app.

``create_server_app`` is what the real-server tests run in a waitress process:
``python -m waitress --call tests.integrations.flask.apps:create_server_app``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from chatauth.integrations.flask import ChatAuth, chat_required, current_chat
from flask import Flask, jsonify, render_template_string, request
from flask_login import LoginManager, UserMixin, login_user, logout_user
from werkzeug.wrappers import Response

from chatauth.errors import ProviderUnavailableError
from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.base import Revocation
from chatauth.providers.jwt import JWTProvider
from chatauth.testing import canary
from chatauth.tokens import ChatToken
from tests.stores.handshake import mark

JWT_SECRET = canary.secret("flask-tests-jwt-secret")
SECRET_KEY = canary.secret("flask-tests-secret-key")
PROVIDER_PATH = "tests.integrations.flask.apps:CountingJWTProvider"


class DemoUser(UserMixin):
    def __init__(self, user_id: str) -> None:
        self.id = user_id


USERS = {name: DemoUser(name) for name in ("alice", "bob", "carol")}


class CountingJWTProvider(JWTProvider):
    """The JWT provider, counting what it is asked to do.

    ``issued`` counts issue calls in this process; with ``TEST_ISSUE_LOG`` set, each call also
    appends the UID to that file (server processes). With ``TEST_HANDSHAKE_DIR`` set, an issue
    call stays inside the provider until another request of the server is seen waiting for
    the same token (:func:`hold_for_a_waiter`), so concurrent first requests surely race.
    Revocation is per token so that logout paths are visible in ``revoked``; ``fail_revoke``
    makes revocations fail as a provider outage does.
    """

    revocation: ClassVar[Revocation] = "token"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued = 0
        self.revoked: list[ChatToken] = []
        self.fail_revoke = False
        self._count_lock = threading.Lock()

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        with self._count_lock:
            self.issued += 1
            log = os.environ.get("TEST_ISSUE_LOG")
            if log:
                with open(log, "a") as out:
                    out.write(identity.uid + "\n")
        folder = os.environ.get("TEST_HANDSHAKE_DIR")
        if folder:
            hold_for_a_waiter(Path(folder))
        return super().issue(identity, ttl)

    def revoke(self, token: ChatToken) -> Flow[None]:
        if self.fail_revoke:
            raise ProviderUnavailableError("emulated outage", provider=self.name, retry_after=7)
        self.revoked.append(token)
        return super().revoke(token)


#: Seconds an issue call waits inside the provider for a concurrent request to show up.
HANDSHAKE_DEADLINE = 60.0


def hold_for_a_waiter(folder: Path) -> None:
    """Inside the issue: mark ``enter``, wait until a ``waiting-*`` marker exists, mark ``exit``.

    Raises:
        TimeoutError: no other request waited within :data:`HANDSHAKE_DEADLINE` (no race).
    """
    mark(folder, f"enter-{os.getpid()}")
    deadline = time.monotonic() + HANDSHAKE_DEADLINE
    # Polls a condition (another request's marker) under a deadline: no guessed duration.
    while not any(folder.glob("waiting-*")):
        if time.monotonic() > deadline:
            raise TimeoutError("no other request waited for the token being issued")
        time.sleep(0.01)
    mark(folder, f"exit-{os.getpid()}")


def report_waiters(app: Flask, folder: Path) -> None:
    """Mark ``waiting-<pid>.<thread>`` each time a request finds its token being issued by
    another thread of this process (the service's single-flight ``on_wait`` hook)."""

    def waiting(_key: str) -> None:
        mark(folder, f"waiting-{os.getpid()}.{threading.get_ident()}")

    app.extensions["chatauth"].service._locks.on_wait = waiting


def base_config() -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
        "CHATAUTH_PROVIDER": CountingJWTProvider,
        "CHATAUTH_JWT_SECRET": JWT_SECRET,
        "CHATAUTH_STORE": "memory://",
    }


def add_login(app: Flask) -> LoginManager:
    """Flask-Login with the demo users; ``POST /login`` (form ``user``), ``POST /logout``.

    ``Authorization: User <name>`` authenticates one request without a session (an API
    client), through Flask-Login's ``request_loader``.
    """
    manager = LoginManager()
    manager.login_view = "login"  # the token endpoint must still answer 401, not redirect
    manager.user_loader(USERS.get)

    @manager.request_loader
    def from_header(req: Any) -> DemoUser | None:
        scheme, _, name = req.headers.get("Authorization", "").partition(" ")
        return USERS.get(name) if scheme == "User" else None

    manager.init_app(app)

    @app.post("/login")
    def login() -> str:
        login_user(USERS[request.form["user"]])
        return "ok"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    return manager


def add_views(app: Flask) -> None:
    """``/peek`` reads ``current_chat`` three times, ``/quiet`` never does, ``/api`` is
    ``@chat_required``, ``/page`` uses it in a template."""

    @app.get("/peek")
    def peek() -> Response:
        uids = [current_chat.uid if current_chat else None for _ in range(3)]
        return jsonify(uids=uids)

    @app.get("/quiet")
    def quiet() -> str:
        return "nothing chat-related here"

    @app.route("/api", methods=["GET", "OPTIONS"])
    @chat_required
    def api() -> Response:
        return jsonify(uid=current_chat.uid if current_chat else None, method=request.method)

    @app.get("/page")
    def page() -> str:
        return render_template_string(
            "{% if current_chat %}chat as {{ current_chat.uid }}{% else %}no chat{% endif %}",
            current_chat=current_chat,
        )


def build_app(
    config: Mapping[str, Any] | None = None,
    *,
    ext: ChatAuth | None = None,
    flask_login: bool = True,
    instance_path: str | None = None,
) -> Flask:
    """A fresh app: config, Flask-Login, views, and only then ``init_app`` (a late init)."""
    app = Flask(__name__, instance_path=instance_path)
    app.config.update(base_config())
    app.config.update(config or {})
    if flask_login:
        add_login(app)
    add_views(app)
    (ext or ChatAuth()).init_app(app)
    return app


def create_server_app() -> Flask:
    """The app a waitress test process serves; settings from ``CHATAUTH_*`` variables."""
    config: dict[str, Any] = {k: v for k, v in os.environ.items() if k.startswith("CHATAUTH_")}
    config.setdefault("CHATAUTH_PROVIDER", PROVIDER_PATH)
    config.setdefault("CHATAUTH_JWT_SECRET", None)  # base_config's, unless the env has one
    app = build_app({"TESTING": False, **config}, instance_path=os.environ.get("TEST_INSTANCE"))
    folder = os.environ.get("TEST_HANDSHAKE_DIR")
    if folder:
        report_waiters(app, Path(folder))
    return app
