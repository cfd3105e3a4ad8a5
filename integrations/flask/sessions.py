"""The request side: who the user is, the browser session's id, ``current_chat``, logout.

Flask's default session is a signed cookie with no server-side id, so chatauth keeps its own
random app-session id in ``flask.session`` (``_chatauth_sid``), next to the chat UID it was
created for (``_chatauth_uid``). The id is made at Flask-Login's login (a fresh one each
time, so a chat session never survives a change of user) or on first chat use, and dropped at
logout. Both values are signed by the app's ``SECRET_KEY``; neither is a secret.

Users authenticated per request with no session cookie (Flask-Login's ``request_loader``,
token APIs) get one chat token per user instead of one per browser session (DESIGN §4).
"""

from __future__ import annotations

import importlib
import logging
import secrets
from types import ModuleType
from typing import Any

from flask import Flask, current_app, g, has_request_context, session
from flask.sessions import NullSession
from werkzeug.local import LocalProxy

from chatauth.errors import ChatAuthError, ConfigurationError, NotAuthenticatedError
from chatauth.identity import ChatIdentity
from chatauth.service import ChatAuth as ChatAuthService
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

from .state import EXTENSION_KEY, ChatAuthState, get_state

__all__ = [
    "SESSION_ID_KEY",
    "SESSION_UID_KEY",
    "connect_flask_login",
    "current_chat",
    "current_user",
    "end_session",
    "load_chat",
]

logger = logging.getLogger("chatauth.integrations.flask")

#: ``flask.session`` key of chatauth's app-session id.
SESSION_ID_KEY = "_chatauth_sid"
#: ``flask.session`` key of the chat UID that id belongs to.
SESSION_UID_KEY = "_chatauth_uid"
# Request-scoped cache on ``g``, named with the extension's prefix (Flask's extension guide).
_G_KEY = "_chatauth_chat"
_ANONYMOUS = object()


def _flask_login() -> ModuleType | None:
    try:
        return importlib.import_module("flask_login")
    except ImportError:
        return None


def _uses_flask_login(app: Flask) -> bool:
    return hasattr(app, "login_manager") and _flask_login() is not None


def current_user() -> Any:
    """The app user of this request, or ``None``/an anonymous user when nobody logged in.

    The extension's ``user_loader`` callback wins when registered; otherwise Flask-Login's
    ``current_user`` (when its ``LoginManager`` is initialised on the app).

    Raises:
        ConfigurationError: neither is available (``setting="user_loader"``).
    """
    state = get_state()
    if state.user_loader is not None:
        return state.user_loader()
    if _uses_flask_login(current_app):
        flask_login = _flask_login()
        assert flask_login is not None
        return flask_login.current_user._get_current_object()
    raise ConfigurationError(
        "chatauth cannot tell who the app user is: initialise Flask-Login's LoginManager on "
        "this app, or register a function returning the current user with "
        "@chatauth.user_loader.",
        setting="user_loader",
    )


def _cookie_session() -> Any:
    current = session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(current, NullSession):
        raise ConfigurationError(
            "chatauth keeps the browser session's chat session id in flask.session, which "
            "needs app.config['SECRET_KEY'].",
            setting="SECRET_KEY",
        )
    return current


def _per_user() -> bool:
    # A Flask-Login user loaded from the request (API token header) has no cookie session:
    # an id stored in one would be new on every request, and so would the chat token.
    return (
        get_state().user_loader is None
        and _uses_flask_login(current_app)
        and "_user_id" not in session
    )


def _start(identity: ChatIdentity) -> str:
    sid = secrets.token_urlsafe(18)
    store = _cookie_session()
    store[SESSION_ID_KEY] = sid
    store[SESSION_UID_KEY] = identity.uid
    return sid


def _end(service: ChatAuthService, user: Any = None) -> list[ChatToken]:
    store = _cookie_session()
    sid = store.pop(SESSION_ID_KEY, None)
    uid = store.pop(SESSION_UID_KEY, None)
    g.pop(_G_KEY, None)
    if sid is None:
        return []
    if uid:
        identity = ChatIdentity(uid=str(uid))
    else:
        identity = service.identity_for(user if user is not None else current_user())
    return service.end_session(identity, str(sid))


def _app_session(service: ChatAuthService, identity: ChatIdentity) -> str | None:
    if _per_user():
        return None
    store = _cookie_session()
    sid = store.get(SESSION_ID_KEY)
    if sid is not None and store.get(SESSION_UID_KEY) != identity.uid:
        # Another user's chat session was never ended in this browser session (an app
        # without Flask-Login that forgot end_session()): end it rather than let it linger.
        _end(service)
        sid = None
    return str(sid) if sid is not None else _start(identity)


def load_chat(*, required: bool) -> ChatSession | None:
    """The chat session of this request's user, computed once per request (cached on ``g``).

    Args:
        required: raise :class:`~chatauth.NotAuthenticatedError` instead of returning
            ``None`` when nobody is logged in.

    Raises:
        NotAuthenticatedError: no user and ``required``.
        ConfigurationError, InvalidUIDError, ProviderError, ProviderUnavailableError,
        StoreUnavailableError: from the core; not cached, so a later access retries.
    """
    cached = g.get(_G_KEY)
    if cached is None:
        service = get_state().service
        user = current_user()
        if user is None or getattr(user, "is_authenticated", True) is False:
            cached = _ANONYMOUS
        else:
            identity = service.identity_for(user)
            cached = service.get_session(identity, _app_session(service, identity))
        setattr(g, _G_KEY, cached)
    if cached is _ANONYMOUS:
        if required:
            raise NotAuthenticatedError()
        return None
    assert isinstance(cached, ChatSession)
    return cached


def _get_current_chat() -> ChatSession | None:
    if has_request_context():
        return load_chat(required=False)
    return None


#: The chat session of the logged-in user: a :class:`~chatauth.ChatSession` (``.uid``,
#: ``.token``, ``.client``, ``.to_json()``), resolved on first access in a request and cached
#: on ``g``. It is falsy when nobody is logged in (a proxy is never ``None`` itself: test it
#: with ``if current_chat:``). Provider errors raise from the access, e.g.
#: :class:`~chatauth.ProviderUnavailableError`; requests that never touch it cost nothing.
current_chat: ChatSession = LocalProxy(_get_current_chat)  # type: ignore[assignment]


def end_session(user: Any = None) -> list[ChatToken]:
    """End this browser session's chat session: drop and revoke its token.

    Flask-Login's ``logout_user()`` does this by itself. Without Flask-Login, call it in
    your logout view *before* clearing ``flask.session``. The next chat use starts a new
    chat session.

    Args:
        user: the user logging out, when the session does not record the chat UID (only
            needed for sessions started before chatauth was installed); default: the
            current user.

    Returns:
        the tokens ended (empty when this browser session had no chat session).

    Raises:
        RuntimeError: outside a request, or chatauth not initialised on the app.
        StoreUnavailableError: the store could not be reached. A provider outage is not
            raised: the revocation is queued for ``flask chatauth revoke-pending``.
    """
    return _end(get_state().service, user)


# -- Flask-Login signal receivers ---------------------------------------------------------------
def _state_of(sender: Any) -> ChatAuthState | None:
    extensions = getattr(sender, "extensions", None)
    state = extensions.get(EXTENSION_KEY) if isinstance(extensions, dict) else None
    return state if isinstance(state, ChatAuthState) else None


def _on_logged_in(sender: Any, user: Any = None, **extra: Any) -> None:
    state = _state_of(sender)
    if state is None:
        return
    try:
        # A fresh id per login: whatever chat session this browser had is over.
        _end(state.service, user)
        _start(state.service.identity_for(user))
    except ChatAuthError:
        logger.exception("chatauth could not start the chat session at login")


def _on_loaded_from_cookie(sender: Any, user: Any = None, **extra: Any) -> None:
    state = _state_of(sender)
    if state is None or SESSION_ID_KEY in session:
        return
    try:
        _start(state.service.identity_for(user))
    except ChatAuthError:
        logger.exception("chatauth could not start the chat session for a remembered user")


def _on_logged_out(sender: Any, user: Any = None, **extra: Any) -> None:
    state = _state_of(sender)
    if state is None:
        return
    try:
        _end(state.service, user)
    except ChatAuthError:
        # Logging out must work even with the store down; the token dies at its expiry.
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
