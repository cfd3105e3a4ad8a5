"""The request side: who the user is, where the session is, ``current_chat``, logout.

What a chat session does on a request is the core's :class:`~chatauth.binding.ChatBinding`;
this module only tells it where Flask keeps the session mapping (``flask.session``) and who
the user is (the extension's ``user_loader``, else Flask-Login); :mod:`.signals` says which
Flask-Login signals mean login and logout. The binding lives on ``g`` for the request, made
on first need, which also adds its ``finish`` to that request's ``after_this_request``
functions (run before the session cookie is written): a request that never uses chat, logs
in or out runs no chatauth code. The common read, a chat session this process served a
moment ago, needs no binding (:func:`chatauth.binding.kept_session`): it is kept on ``g``,
adds ``finish`` all the same, and a binding is made for it only if one is needed later.

Users authenticated per request with no session cookie (Flask-Login's ``request_loader``,
token APIs) get one chat token per user instead of one per browser session (DESIGN §4).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from flask import (
    Flask,
    Response,
    after_this_request,
    current_app,
    g,
    has_request_context,
    session,
)
from flask.sessions import NullSession
from werkzeug.local import LocalProxy

from chatauth.binding import SESSION_KEY, ChatBinding, finish_needed, kept_session
from chatauth.errors import ConfigurationError, NotAuthenticatedError
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

from .state import ChatAuthState, get_state

__all__ = [
    "SESSION_ID_KEY",
    "current_chat",
    "current_user",
    "end_chat_session",
    "load_chat",
    "refresh_chat",
]

logger = logging.getLogger("chatauth.integrations.flask")

#: ``flask.session`` key of chatauth's app-session id (:data:`chatauth.binding.SESSION_KEY`).
SESSION_ID_KEY = SESSION_KEY
# Request-scoped binding on ``g``, named with the extension's prefix (Flask's extension guide).
_G_KEY = "_chatauth_binding"
# A chat session read without a binding, and the slot's value it was read under.
_G_KEPT = "_chatauth_kept"


def _flask_login() -> ModuleType | None:
    try:
        return importlib.import_module("flask_login")
    except ImportError:
        return None


def _uses_flask_login(app: Flask) -> bool:
    return hasattr(app, "login_manager") and _flask_login() is not None


def _login_user_proxy(state: ChatAuthState, app: Flask) -> Any:
    """Flask-Login's ``current_user`` proxy when ``app`` uses Flask-Login, else ``None``.

    Found once per app and kept on its state: a ``LoginManager`` cannot be set up on an app
    that served a request (Flask refuses its ``after_request``), so a found one stays. An app
    without one is asked again each time (one ``hasattr``), as it may still get one before
    its first request.
    """
    proxy = state.login_user_proxy
    if proxy is None and _uses_flask_login(app):
        flask_login = _flask_login()
        assert flask_login is not None
        proxy = state.login_user_proxy = flask_login.current_user
    return proxy


def _no_user_source() -> Any:
    raise ConfigurationError(
        "chatauth cannot tell who the app user is: initialise Flask-Login's LoginManager on "
        "this app, or register a function returning the current user with "
        "@chatauth.user_loader.",
        setting="user_loader",
    )


def _user_source(state: ChatAuthState, app: Flask) -> Callable[[], Any]:
    """What returns the app user of a request to ``app``: the ``user_loader`` callback, else
    Flask-Login's ``current_user``, else a function raising the ConfigurationError."""
    loader = state.user_loader
    if loader is not None:
        return loader
    proxy = _login_user_proxy(state, app)
    if proxy is None:
        return _no_user_source
    return proxy._get_current_object  # type: ignore[no-any-return]


def current_user() -> Any:
    """The app user of this request, or ``None``/an anonymous user when nobody logged in.

    The extension's ``user_loader`` callback wins when registered; otherwise Flask-Login's
    ``current_user`` (when its ``LoginManager`` is initialised on the app).

    Raises:
        ConfigurationError: neither is available (``setting="user_loader"``).
    """
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    return _user_source(get_state(app), app)()


def _cookie_session(current: Any) -> Any:
    if isinstance(current, NullSession):
        raise ConfigurationError(
            "chatauth keeps the browser session's chat session id in flask.session, which "
            "needs app.config['SECRET_KEY'].",
            setting="SECRET_KEY",
        )
    return current


def _sources(cookie: bool) -> tuple[ChatAuthState, Any, Callable[[], Any], bool]:
    """``(state, session, load_user, per_user)`` of this request, each context-local
    (``current_app``, ``session``) looked up once: the extension's state, ``flask.session``,
    what returns the app user, and whether the chat session is one per user rather than one
    per cookie session (``cookie`` asks for the latter, as at a login or logout)."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    current = session._get_current_object()  # type: ignore[attr-defined]
    loader = state.user_loader
    if loader is not None:
        return state, current, loader, False
    proxy = _login_user_proxy(state, app)
    load_user = _no_user_source if proxy is None else proxy._get_current_object
    # A Flask-Login user loaded from the request (API token header) has no cookie session: an
    # id stored in one would be new on every request, and so would the chat token.
    per_user = not cookie and proxy is not None and "_user_id" not in current
    return state, current, load_user, per_user


def _new_binding(
    request_g: Any,
    made: ChatBinding | None,
    cookie: bool,
    sources: tuple[ChatAuthState, Any, Callable[[], Any], bool] | None = None,
) -> tuple[ChatBinding, Callable[[], Any]]:
    """Make this request's binding (see :func:`_binding`) and say where its user comes from.
    A chat session read earlier in the request without a binding (:func:`load_chat`) is
    handed over to it, with the slot's value from that read to watch."""
    state, current, load_user, per_user = sources or _sources(cookie)
    kept: tuple[ChatSession, object] | None = request_g.get(_G_KEPT)
    if kept is None:
        binding = ChatBinding(state.service, None if per_user else _cookie_session(current))
        if made is None:
            after_this_request(finish)
    else:  # its read added finish already
        binding = ChatBinding(state.service, current, started=kept[1], kept=kept[0])
    setattr(request_g, _G_KEY, binding)
    return binding, load_user


def _binding(*, cookie: bool = False) -> ChatBinding:
    """This request's binding (made on first need); ``cookie`` forces one over the cookie
    session, as at a Flask-Login login or logout.

    The binding is made here and nowhere else, so a request that never uses chat, logs in
    or out runs no chatauth code at all: its end-of-request step (:func:`finish`) is added
    to that request alone (``after_this_request``) when its binding is first made.
    """
    request_g = g._get_current_object()
    made: ChatBinding | None = request_g.get(_G_KEY)
    if made is not None and not (cookie and made.session is None):
        return made
    return _new_binding(request_g, made, cookie)[0]


def finish(response: Response) -> Response:
    """The binding's end-of-request step, before the cookie is written; added to a request
    by its first chat read or :func:`_binding` (a request that never used chat, logged in or
    out has none, and never reads ``flask.session``: Flask adds ``Vary: Cookie`` to a
    response whose session was read).

    :func:`chatauth.binding.finish_needed` says first whether the step has anything to do,
    and a request that only read a kept chat session makes its binding only then. It wants
    the slot's value from the request's start: that read noted it; otherwise Flask cannot
    give it without reading the session up front, but the value now is the same whenever
    the answer depends on it: only for a session whose ``modified`` flag says it was not
    changed in this request.
    """
    request_g = g._get_current_object()
    binding: ChatBinding | None = request_g.get(_G_KEY)
    if binding is None:
        started = request_g.get(_G_KEPT)[1]
        if finish_needed(session._get_current_object(), started):  # type: ignore[attr-defined]
            _binding().finish()
        return response
    mapping = binding.session
    if mapping is not None and finish_needed(mapping, mapping.get(binding.key), binding.key):
        binding.finish()
    return response


def load_chat(*, required: bool) -> ChatSession | None:
    """The chat session of this request's user, decided once per request (kept on ``g``).

    Args:
        required: raise :class:`~chatauth.NotAuthenticatedError` instead of returning
            ``None`` when nobody is logged in.

    Raises:
        NotAuthenticatedError: no user and ``required``.
        ConfigurationError, InvalidUIDError, ProviderError, ProviderUnavailableError,
        StoreUnavailableError: from the core; the same error again for the rest of the
        request (:mod:`chatauth.binding`).
    """
    request_g = g._get_current_object()
    binding: ChatBinding | None = request_g.get(_G_KEY)
    try:
        if binding is None:
            kept: tuple[ChatSession, object] | None = request_g.get(_G_KEPT)
            if kept is not None:
                return kept[0]
            return _first_read(request_g)
        return binding.get(current_user)
    except NotAuthenticatedError:
        if required:
            raise
        return None


def _first_read(request_g: Any) -> ChatSession:
    """The request's first chat read, its user source at hand. A chat session this process
    served a moment ago (:func:`chatauth.binding.kept_session`) is kept on ``g`` without a
    binding; anything else is decided by one."""
    sources = _sources(cookie=False)
    state, current, load_user, per_user = sources
    user = load_user()
    if not per_user:
        started = current.get(SESSION_KEY)
        kept = kept_session(state.service, current, user, started)
        if kept is not None:
            setattr(request_g, _G_KEPT, (kept, started))
            after_this_request(finish)  # a session cleared later in the request still ends it
            return kept
    binding = _new_binding(request_g, None, cookie=False, sources=sources)[0]
    return binding.get(lambda: user)


def _get_current_chat() -> ChatSession | None:
    if has_request_context():
        return load_chat(required=False)
    return None


#: The chat session of the logged-in user: a :class:`~chatauth.ChatSession` (``.uid``,
#: ``.token``, ``.client``, ``.to_json()``), resolved on first access in a request and kept
#: on ``g``. It is falsy when nobody is logged in (a proxy is never ``None`` itself: test it
#: with ``if current_chat:``). Provider errors raise from the access, e.g.
#: :class:`~chatauth.ProviderUnavailableError`; requests that never touch it cost nothing.
current_chat: ChatSession = LocalProxy(_get_current_chat)  # type: ignore[assignment]


def end_chat_session() -> list[ChatToken]:
    """End this browser session's chat session: drop and revoke its token.

    Flask-Login's ``logout_user()`` does this by itself. Without Flask-Login, call it in
    your logout view (before or after clearing ``flask.session``). The next chat use starts
    a new chat session.

    Returns:
        the tokens ended (empty when this browser session had no chat session).

    Raises:
        RuntimeError: outside a request, or chatauth not initialised on the app.
        StoreUnavailableError: the store could not be reached. A provider outage is not
            raised: the revocation is queued for ``flask chatauth revoke-pending``.
    """
    return _binding().end(current_user)


def refresh_chat(rejected: str) -> ChatSession:
    """Replace the token the chat SDK ``rejected`` and return the session to use now (the
    refresh endpoint's work: :meth:`chatauth.binding.ChatBinding.refresh`).

    Raises:
        RefreshLimitError: too many replacements of this session; and the errors of
            :func:`load_chat`.
    """
    return _binding().refresh(current_user, rejected)
