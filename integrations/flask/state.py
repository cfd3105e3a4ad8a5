"""The per-app state ``init_app`` registers as ``app.extensions["chatauth"]``."""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

if TYPE_CHECKING:
    from chatauth.service import ChatAuth as ChatAuthService

    from .extension import ChatAuth

__all__ = ["EXTENSION_KEY", "ChatAuthState", "get_service", "get_state"]

#: The key in ``app.extensions``.
EXTENSION_KEY = "chatauth"


@dataclasses.dataclass(eq=False)
class ChatAuthState:
    """Everything chatauth keeps for one app, in ``app.extensions["chatauth"]``.

    Attributes:
        service: the framework-neutral :class:`chatauth.ChatAuth` service of this app (its
            own store and its own pooled ``httpx.Client``).
        extension: the :class:`~chatauth.integrations.flask.ChatAuth` extension that
            initialised the app (holds the ``user_loader`` callback).
        url_prefix: where the blueprint is mounted (``"/chat"`` by default), or ``None`` when
            ``CHATAUTH_BLUEPRINT`` is false.
        login_user_proxy: Flask-Login's ``current_user`` proxy once a request found the app
            using Flask-Login (kept so that each request does not look for it again), else
            ``None``.
    """

    service: ChatAuthService
    extension: ChatAuth
    url_prefix: str | None
    _finalizer: weakref.finalize[Any, Any] = dataclasses.field(repr=False)
    login_user_proxy: Any = dataclasses.field(default=None, repr=False)

    @property
    def user_loader(self) -> Callable[[], Any] | None:
        return self.extension.user_loader_callback

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran (or the app was garbage-collected)."""
        return not self._finalizer.alive

    def close(self) -> None:
        """Close the app's httpx client and store connections; runs once.

        Flask has no "app torn down" event (``teardown_appcontext`` runs after every
        request), so this also runs by itself when the app is garbage-collected or the
        interpreter exits (a :func:`weakref.finalize`). Call it yourself in tests or when
        you drop an app early.
        """
        self._finalizer()


def get_state(app: Flask | None = None) -> ChatAuthState:
    """The chatauth state of ``app`` (default: ``current_app``).

    Raises:
        RuntimeError: chatauth was not initialised on this app, or there is no app context.
    """
    target: Flask = app if app is not None else current_app._get_current_object()  # type: ignore[attr-defined]
    state = target.extensions.get(EXTENSION_KEY)
    if not isinstance(state, ChatAuthState):
        raise RuntimeError(
            "chatauth is not initialised on this Flask app: call ChatAuth(app) or "
            "chatauth.init_app(app) in your app factory."
        )
    return state


def get_service(app: Flask | None = None) -> ChatAuthService:
    """The core :class:`chatauth.ChatAuth` service of ``app`` (default: ``current_app``).

    Use it for what the request helpers do not cover, e.g.
    ``get_service().end_all_sessions(user)`` after a password change.

    Raises:
        RuntimeError: chatauth was not initialised on this app, or there is no app context.
    """
    return get_state(app).service
