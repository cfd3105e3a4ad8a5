"""A small Flask app showing chatauth: log in, open the chat page, log out.

Run it from the repository root (no server, no network, no secret to paste)::

    flask --app sample_projects.flask_app run

It uses the JWT provider with a generated development secret and a SQLite store, both kept
in ``sample_projects/flask_app/instance/`` (git-ignored). Environment variables switch it to
another provider; every ``CHATAUTH_*`` variable becomes the config key of the same name::

    CHATAUTH_PROVIDER=matrix CHATAUTH_MATRIX_HOMESERVER_URL=http://127.0.0.1:8008 \\
    CHATAUTH_MATRIX_JWT_SECRET=...   # or CHATAUTH_MATRIX_ADMIN_TOKEN=...
    flask --app sample_projects.flask_app run

(Flask's own ``app.config.from_prefixed_env("CHATAUTH")`` would strip the prefix and
JSON-decode the values, so the variables are copied as they are instead.)
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatauth.integrations.flask import ChatAuth
from flask import (
    Blueprint,
    Flask,
    abort,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from markupsafe import Markup
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from sample_projects.csrf import FIELD, CSRFTokens

__all__ = ["DEMO_USERS", "DemoUser", "chatauth", "create_app", "login_manager"]

HERE = Path(__file__).resolve().parent
#: chat.js, chat.css and the favicon, shared by the three sample projects.
SHARED = HERE.parent / "shared"

#: username -> demo password. It is a demo: the login page shows them.
DEMO_PASSWORDS: dict[str, str] = {"alice": "wonderland", "bob": "builder"}


class DemoUser(UserMixin):
    """A demo user; chatauth's default mapper makes the UID ``"user-" + get_id()``."""

    def __init__(self, username: str, password: str) -> None:
        self.id = username
        self.password_hash = generate_password_hash(password)

    @property
    def display_name(self) -> str:
        return self.id.title()


DEMO_USERS: dict[str, DemoUser] = {
    name: DemoUser(name, password) for name, password in DEMO_PASSWORDS.items()
}

# The extensions exist once; each app made by create_app() gets its own state.
login_manager = LoginManager()
login_manager.login_view = "login"
chatauth = ChatAuth()


@login_manager.user_loader
def load_user(user_id: str) -> DemoUser | None:
    return DEMO_USERS.get(user_id)


def _dev_secret(instance: Path, name: str) -> str:
    """A random secret kept in the instance folder, so sessions and tokens survive restarts."""
    path = instance / "dev-secrets.json"
    stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if name not in stored:
        stored[name] = secrets.token_urlsafe(32)
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(stored, out)
    return stored[name]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """The app factory (``flask --app sample_projects.flask_app`` finds it by its name).

    Args:
        test_config: config keys applied last (tests: ``CHATAUTH_STORE``, an
            ``instance_path`` of their own via ``INSTANCE_PATH``...).
    """
    overrides = dict(test_config or {})
    instance = Path(overrides.pop("INSTANCE_PATH", HERE / "instance"))
    app = Flask(__name__, instance_path=str(instance))
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY -> SECRET_KEY, Flask's convention
    app.config.update({k: v for k, v in os.environ.items() if k.startswith("CHATAUTH_")})
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY"):  # Flask's default config holds SECRET_KEY=None
        app.config["SECRET_KEY"] = _dev_secret(instance, "flask-secret-key")
    # Flask sends no SameSite attribute by default: Lax keeps the session cookie off
    # cross-site POSTs (the CSRF token below covers browsers that ignore it).
    if not app.config.get("SESSION_COOKIE_SAMESITE"):
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config.setdefault("CHATAUTH_PROVIDER", "jwt")
    app.config.setdefault("CHATAUTH_NAME_ATTRIBUTE", "display_name")
    if app.config["CHATAUTH_PROVIDER"] == "jwt" and not app.config.get("CHATAUTH_JWT_SECRET"):
        app.config["CHATAUTH_JWT_SECRET"] = _dev_secret(instance, "jwt-secret")

    login_manager.init_app(app)
    chatauth.init_app(app)  # CHATAUTH_STORE defaults to instance/chatauth.sqlite3
    _add_views(app)
    return app


def _add_views(app: Flask) -> None:
    app.register_blueprint(
        Blueprint("shared", __name__, static_folder=SHARED, static_url_path="/shared")
    )
    csrf = CSRFTokens(app.config["SECRET_KEY"])
    # Templates put {{ csrf_field() }} in every form that POSTs.
    app.jinja_env.globals["csrf_field"] = lambda: Markup(csrf.hidden_field(session))

    def check_csrf() -> None:
        if not csrf.is_valid(session, request.form.get(FIELD)):
            abort(403, "The form has expired or did not come from this site: reload it.")

    @app.get("/")
    @login_required
    def chat_page() -> str:
        return render_template("chat.html")

    @app.route("/login", methods=["GET", "POST"])
    def login() -> str | Response:
        if request.method == "POST":
            check_csrf()
            user = DEMO_USERS.get(request.form.get("username", ""))
            if user and check_password_hash(user.password_hash, request.form.get("password", "")):
                login_user(user)  # chatauth starts a fresh chat session id for this browser
                return redirect(url_for("chat_page"))
            flash("Unknown user or wrong password.")
        return render_template("login.html", demo_passwords=DEMO_PASSWORDS)

    @app.post("/logout")
    def logout() -> Response:
        check_csrf()
        if current_user.is_authenticated:
            logout_user()  # Flask-Login's user_logged_out: chatauth revokes the chat token
        return redirect(url_for("login"))
