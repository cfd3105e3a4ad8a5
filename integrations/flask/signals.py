"""Blinker signals re-emitting the core's hooks, and the Flask-Login receivers.

Subscribe as with Flask's own signals::

    from chatauth.integrations.flask import chat_session_started

    @chat_session_started.connect_via(app)
    def audit(app, session, **extra): ...
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from blinker import Namespace

from chatauth.errors import ChatAuthError, ConfigurationError
from chatauth.identity import ChatIdentity
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

from .sessions import _binding, _flask_login
from .state import EXTENSION_KEY, ChatAuthState

if TYPE_CHECKING:
    from flask import Flask

    from chatauth.chat_users import ChatUserChange
    from chatauth.service import ChatAuth as ChatAuthService

__all__ = ["chat_session_ended", "chat_session_started", "chat_user_changed", "connect_flask_login"]

logger = logging.getLogger("chatauth.integrations.flask")

_signals = Namespace()

#: Sent when chatauth issued a new chat token (a user's first chat use in a browser session,
#: or a refresh near expiry). The app is the sender; it is passed ``session``, the
#: :class:`~chatauth.ChatSession` (its token's ``repr`` is redacted).
chat_session_started = _signals.signal("chat-session-started")

#: Sent when chat tokens were dropped and revoked: Flask-Login logout, ``end_chat_session()``,
#: ``flask chatauth end-sessions``. The app is the sender; it is passed ``identity``, the
#: :class:`~chatauth.ChatIdentity`, and ``tokens``, the list of :class:`~chatauth.ChatToken`
#: that were ended.
chat_session_ended = _signals.signal("chat-session-ended")

#: Sent after a chat-user operation (``get_service().update_chat_user(user)``,
#: ``deactivate_chat_user``, ``erase_chat_user``, ``flask chatauth chat-user``), done or
#: queued. The app is the sender; it is passed ``change``, the
#: :class:`~chatauth.chat_users.ChatUserChange`.
chat_user_changed = _signals.signal("chat-user-changed")


def connect_hooks(app: Flask, service: ChatAuthService) -> None:
    """Re-emit ``service``'s hooks as this app's signals.

    The hooks hold the app weakly: the service lives in ``app.extensions``, and a strong
    reference back would keep every app (and its finalizer-closed client) alive forever.
    """
    app_ref = weakref.ref(app)

    def started(session: ChatSession) -> None:
        sender = app_ref()
        if sender is not None:
            chat_session_started.send(sender, session=session)

    def ended(identity: ChatIdentity, tokens: list[ChatToken]) -> None:
        sender = app_ref()
        if sender is not None:
            chat_session_ended.send(sender, identity=identity, tokens=tokens)

    def user_changed(change: ChatUserChange) -> None:
        sender = app_ref()
        if sender is not None:
            chat_user_changed.send(sender, change=change)

    service.on_token_issued.append(started)
    service.on_session_ended.append(ended)
    service.on_chat_user_changed.append(user_changed)


# -- Flask-Login signal receivers ---------------------------------------------------------------
def _state_of(sender: Any) -> ChatAuthState | None:
    extensions = getattr(sender, "extensions", None)
    state = extensions.get(EXTENSION_KEY) if isinstance(extensions, dict) else None
    return state if isinstance(state, ChatAuthState) else None


def _on_logged_in(sender: Any, user: Any = None, **extra: Any) -> None:
    if _state_of(sender) is None:
        return
    try:
        _binding(cookie=True).login()
    except ChatAuthError:
        logger.exception("chatauth could not end the previous chat session at login")


def _on_loaded_from_cookie(sender: Any, user: Any = None, **extra: Any) -> None:
    if _state_of(sender) is None:
        return
    # A remembered user: this response gets the app-session id (the binding's finish), so
    # that their concurrent first chat requests agree on one chat session.
    with contextlib.suppress(ConfigurationError):  # no SECRET_KEY: no session to keep it in
        _binding(cookie=True)


def _on_logged_out(sender: Any, user: Any = None, **extra: Any) -> None:
    if _state_of(sender) is None:
        return
    try:
        _binding(cookie=True).end()
    except ChatAuthError:
        # Logging out must work even with the store down; the sweep finishes the job.
        logger.exception("chatauth could not end the chat session at logout")


def connect_flask_login() -> None:
    """Connect the Flask-Login receivers once per process (no-op without Flask-Login).

    The receivers serve every app: each looks up the sender's ``app.extensions`` and does
    nothing for an app without chatauth.
    """
    flask_login = _flask_login()
    if flask_login is None:
        return
    flask_login.user_logged_in.connect(_on_logged_in)
    flask_login.user_loaded_from_cookie.connect(_on_loaded_from_cookie)
    flask_login.user_logged_out.connect(_on_logged_out)
