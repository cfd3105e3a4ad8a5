"""Flask adapter: the ``ChatAuth`` extension, ``current_chat``, signals, blueprint and CLI.

Go live in an app factory with two lines (DESIGN §7)::

    from chatauth.integrations.flask import ChatAuth

    chatauth = ChatAuth()

    def create_app():
        app = Flask(__name__)
        app.config.from_mapping(CHATAUTH_PROVIDER="jwt", CHATAUTH_JWT_SECRET="...")
        chatauth.init_app(app)      # or ChatAuth(app) without a factory
        return app

The logged-in user's chat session is then ``current_chat`` (a ``ChatSession``, or ``None``
without a login), the front end fetches it from ``GET /chat/token``, and Flask-Login's
``logout_user()`` ends it. The extension follows Flask's "Flask Extension Development" guide:
state lives in ``app.extensions["chatauth"]``, never on the extension object, so one
``ChatAuth()`` serves any number of apps in one process.
"""

from __future__ import annotations

try:
    import flask  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.flask needs Flask: pip install 'chatauth-middleware[flask]'"
    ) from exc

from chatauth.deprecation import deprecated_aliases

from .extension import ChatAuth, ChatAuthState, get_service
from .sessions import current_chat, end_chat_session
from .signals import chat_session_ended, chat_session_started, chat_user_changed
from .views import chat_required

__all__ = [
    "ChatAuth",
    "ChatAuthState",
    "chat_required",
    "chat_session_ended",
    "chat_session_started",
    "chat_user_changed",
    "current_chat",
    "end_chat_session",
    "get_service",
]

__getattr__ = deprecated_aliases(
    __name__, {"end_session": ("chatauth.integrations.flask", "end_chat_session")}
)
