"""The ``ChatAuth`` Flask extension (Flask's "Flask Extension Development" guide).

Settings are the app's ``CHATAUTH_*`` config keys: every key of :mod:`chatauth.config`
(``CHATAUTH_PROVIDER``, ``CHATAUTH_STORE``, ``CHATAUTH_TOKEN_TTL``, the provider's keys such
as ``CHATAUTH_JWT_SECRET``...) plus two for Flask:

======================= =========================================================
``CHATAUTH_URL_PREFIX`` where the blueprint is mounted (default ``"/chat"``: the
                        token endpoint is ``GET /chat/token``)
``CHATAUTH_BLUEPRINT``  ``False`` to mount the token endpoint yourself
======================= =========================================================

A key set to ``None`` counts as unset. A relative SQLite ``CHATAUTH_STORE`` (and the default,
``chatauth.sqlite3``) lives in the app's instance folder, as Flask-SQLAlchemy does with
relative SQLite paths.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Flask

from chatauth.errors import ConfigurationError
from chatauth.tokens import ChatToken

from .cli import cli
from .sessions import end_chat_session
from .signals import connect_flask_login, connect_hooks
from .state import (
    EXTENSION_KEY,
    ChatAuthState,
    get_service,
    get_state,
)
from .views import make_blueprint

if TYPE_CHECKING:
    from chatauth.service import ChatAuth as ChatAuthService

__all__ = [
    "CONFIG_PREFIX",
    "DEFAULT_STORE_FILE",
    "DEFAULT_URL_PREFIX",
    "FLASK_KEYS",
    "ChatAuth",
    "ChatAuthState",
    "get_service",
]

#: Prefix of chatauth's keys in ``app.config``.
CONFIG_PREFIX = "CHATAUTH_"
#: Mount point of the token endpoint's blueprint.
DEFAULT_URL_PREFIX = "/chat"
#: The embedded store's file, in the app's instance folder.
DEFAULT_STORE_FILE = "chatauth.sqlite3"
#: Settings this adapter handles itself (lower case, prefix removed).
FLASK_KEYS = frozenset({"url_prefix", "blueprint"})

U = TypeVar("U", bound=Callable[[], Any])


def _flask_error(exc: ConfigurationError) -> ConfigurationError:
    key = f"{CONFIG_PREFIX}{exc.setting}" if exc.setting else None
    where = f" (Flask config key {key})" if key else ""
    error = ConfigurationError(f"{exc.message}{where}", setting=key, code=exc.code)
    return error


def _url_prefix(settings: Mapping[str, Any]) -> str | None:
    enabled = settings.get("blueprint", True)
    if not isinstance(enabled, bool):
        raise ConfigurationError(
            "CHATAUTH_BLUEPRINT must be True or False.", setting="CHATAUTH_BLUEPRINT"
        )
    prefix = settings.get("url_prefix", DEFAULT_URL_PREFIX)
    if not isinstance(prefix, str) or (prefix and not prefix.startswith("/")):
        raise ConfigurationError(
            "CHATAUTH_URL_PREFIX must be a path starting with '/' (e.g. '/chat').",
            setting="CHATAUTH_URL_PREFIX",
        )
    return prefix.rstrip("/") if enabled else None


def _store_in_instance(app: Flask, settings: dict[str, Any]) -> dict[str, Any]:
    store = settings.get("store") or f"sqlite:///{DEFAULT_STORE_FILE}"
    if isinstance(store, str) and store.lower().startswith("sqlite:///"):
        path = store[len("sqlite:///") :]
        if path and not os.path.isabs(path):
            os.makedirs(app.instance_path, exist_ok=True)
            store = "sqlite:///" + os.path.join(app.instance_path, path)
    return {**settings, "store": store}


class ChatAuth:
    """Flask extension making every logged-in app user a logged-in chat user.

    ``ChatAuth(app)``, or ``chatauth = ChatAuth()`` then ``chatauth.init_app(app)`` in an app
    factory. One extension object may initialise any number of apps: all state goes to
    ``app.extensions["chatauth"]`` (a :class:`ChatAuthState`), never to ``self``.

    ``init_app`` reads and validates the ``CHATAUTH_*`` config, builds the app's core
    :class:`chatauth.ChatAuth` service (its store and one pooled ``httpx.Client``, shared by
    all threads of the app), mounts the token endpoint blueprint, adds the ``flask chatauth``
    CLI group, re-emits the core hooks as :data:`chat_session_started` /
    :data:`chat_session_ended`, and connects Flask-Login's login/logout signals when
    Flask-Login is installed. Config changed after ``init_app`` is not read again.

    Args:
        app: the app to initialise now, or ``None`` for ``init_app`` later.
        overrides: keyword arguments for :func:`chatauth.from_settings`, applied to every
            app this object initialises: a ready ``store=``, ``mapper=``, ``transport=``
            (tests), ``http_client=`` (your own client, which chatauth does not close).

    The core service is ``chatauth.ChatAuth`` too (this class is named for the extension, as
    Flask-SQLAlchemy's ``SQLAlchemy`` is): reach it with :attr:`service` or
    :func:`get_service`.
    """

    def __init__(self, app: Flask | None = None, **overrides: Any) -> None:
        self._overrides = overrides
        self.user_loader_callback: Callable[[], Any] | None = None
        if app is not None:
            self.init_app(app)

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__}>"

    def init_app(self, app: Flask) -> None:
        """Set chatauth up on ``app`` (see the class docstring).

        Raises:
            ConfigurationError: a missing or malformed ``CHATAUTH_*`` key; ``setting`` and
                the message name the Flask key (``CHATAUTH_PROVIDER``), never its value.
            RuntimeError: chatauth is already initialised on this app.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "chatauth is already initialised on this Flask app; call init_app once per app."
            )
        # The service (httpx, stamina) loads when an app is set up, not with this module.
        from chatauth.config import from_settings, normalize_settings

        # None means "not set", as with Flask's own defaults (SECRET_KEY=None).
        settings = {
            k: v for k, v in normalize_settings(app.config, CONFIG_PREFIX).items() if v is not None
        }
        url_prefix = _url_prefix(settings)
        # The sweep's idle bound is the app session's age (PERMANENT_SESSION_LIFETIME, 31 days
        # by default): a chat session not served for that long has lost its app session.
        settings.setdefault("session_idle", app.permanent_session_lifetime)
        try:
            service = from_settings(
                _store_in_instance(app, settings), ignore=FLASK_KEYS, **self._overrides
            )
        except ConfigurationError as exc:
            raise _flask_error(exc) from None
        # Create the pooled client now, while one thread runs: the core makes it lazily, and
        # two request threads racing on the first call would each make (and leak) one.
        _ = service.http_client
        connect_hooks(app, service)
        state = ChatAuthState(
            service=service,
            extension=self,
            url_prefix=url_prefix,
            # Flask has no app-teardown event; close when the app goes away or at exit.
            _finalizer=weakref.finalize(app, service.close),
        )
        app.extensions[EXTENSION_KEY] = state
        if url_prefix is not None:
            app.register_blueprint(make_blueprint(), url_prefix=url_prefix or None)
        app.cli.add_command(cli)
        connect_flask_login()

    def user_loader(self, callback: U) -> U:
        """Register the function returning the current app user, for apps without Flask-Login.

        ``callback()`` runs inside a request and returns the logged-in user object (or
        ``None``); the identity mapper turns it into a chat UID (``CHATAUTH_UID_MAPPER``).
        It wins over Flask-Login's ``current_user``. Usable as a decorator.
        """
        self.user_loader_callback = callback
        return callback

    @property
    def service(self) -> ChatAuthService:
        """The core service of ``current_app`` (needs an app context)."""
        return get_service()

    def state(self, app: Flask | None = None) -> ChatAuthState:
        """The :class:`ChatAuthState` of ``app`` (default: ``current_app``)."""
        return get_state(app)

    def end_chat_session(self) -> list[ChatToken]:
        """End this browser session's chat session; see
        :func:`chatauth.integrations.flask.end_chat_session`."""
        return end_chat_session()

    def end_session(self, user: Any = None) -> list[ChatToken]:
        """Deprecated name of :meth:`end_chat_session` (``user`` is no longer needed)."""
        warnings.warn(
            "ChatAuth.end_session() is deprecated; use end_chat_session().",
            DeprecationWarning,
            stacklevel=2,
        )
        return end_chat_session()

    def close(self, app: Flask | None = None) -> None:
        """Close ``app``'s httpx client and store (default: ``current_app``); see
        :meth:`ChatAuthState.close`."""
        get_state(app).close()
