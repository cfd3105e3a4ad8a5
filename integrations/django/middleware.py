"""``ChatAuthMiddleware``: ``request.chat`` and ``await request.achat()``.

The same shape as Django's ``AuthenticationMiddleware`` (``request.user`` /
``request.auser``): ``request.chat`` is a ``SimpleLazyObject`` that calls
:meth:`ChatAuth.get_session` the first time a view reads it, and ``request.achat`` is its
async twin for async views (forcing the lazy object there raises Django's
``SynchronousOnlyOperation``, as ``request.user`` would). A request that never reads either
costs nothing.

The app session is Django's session: its key is the ``app_session`` of the chat session, so
two browsers of one user hold two tokens, logging out of one ends only its token, and a
flushed or expired session (a new key) never gets the old token back.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import SimpleLazyObject

from chatauth.errors import ChatAuthError, NotAuthenticatedError
from chatauth.responses import error_answer
from chatauth.session import ChatSession

from .conf import get_chatauth

__all__ = ["ChatAuthMiddleware", "aget_chat", "error_response", "get_chat"]


def _app_session(request: HttpRequest) -> str:
    session = getattr(request, "session", None)
    if session is None:
        raise ImproperlyConfigured(
            "chatauth needs django.contrib.sessions' SessionMiddleware in MIDDLEWARE."
        )
    if session.session_key is None:
        session.save()  # a logged-in session always has a key; this covers custom backends
    key: str = session.session_key
    return key


def get_chat(request: HttpRequest) -> ChatSession:
    """The chat session of the request's user for its app session (cached on the request).

    Raises:
        NotAuthenticatedError: nobody is logged in. Other :class:`ChatAuthError` subclasses
            when the provider or the store fails.
    """
    if not hasattr(request, "_cached_chat"):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise NotAuthenticatedError()
        request._cached_chat = get_chatauth().get_session(user, _app_session(request))  # type: ignore[attr-defined]
    session: ChatSession = request._cached_chat  # type: ignore[attr-defined]
    return session


def _loaded_user(request: HttpRequest) -> Any:
    user = request.user
    user.is_authenticated  # noqa: B018 - forces the lazy object here, in a worker thread
    return user


async def aget_chat(request: HttpRequest) -> ChatSession:
    """Async twin of :func:`get_chat`: the user and the session are loaded without blocking
    the event loop, the provider is called with an async HTTP client."""
    if not hasattr(request, "_acached_chat"):
        auser = getattr(request, "auser", None)
        if auser is not None:  # Django >= 5.0
            user = await auser()
        else:
            user = await sync_to_async(_loaded_user)(request)  # Django 4.2
        if user is None or not user.is_authenticated:
            raise NotAuthenticatedError()
        session = request.session
        if session.session_key is None:
            await sync_to_async(session.save)()
        request._acached_chat = await get_chatauth().aget_session(user, session.session_key)  # type: ignore[attr-defined]
    chat: ChatSession = request._acached_chat  # type: ignore[attr-defined]
    return chat


def error_response(exc: ChatAuthError) -> JsonResponse:
    """The JSON answer for a chatauth error (:func:`chatauth.responses.error_answer`)."""
    status, body, headers = error_answer(exc)
    return JsonResponse(body, status=status, headers=headers)


class ChatAuthMiddleware(MiddlewareMixin):
    """Sets ``request.chat`` (lazy) and ``request.achat`` (async); sync- and async-capable.

    Install it after ``django.contrib.auth.middleware.AuthenticationMiddleware``. A
    :class:`~chatauth.errors.ChatAuthError` escaping a view (an anonymous user reading
    ``request.chat``, a provider outage) becomes the JSON error answer of DESIGN §5: 401, 503
    with ``Retry-After``, ...

    Raises:
        ImproperlyConfigured: at start-up, when ``CHATAUTH`` is wrong (the message names the
            setting; ``manage.py check`` gives the same with a hint).
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        get_chatauth()  # fail at start-up, not on the first request that reads request.chat

    def process_request(self, request: HttpRequest) -> None:
        if not hasattr(request, "user"):
            raise ImproperlyConfigured(
                "ChatAuthMiddleware needs request.user: put it after "
                "'django.contrib.auth.middleware.AuthenticationMiddleware' in MIDDLEWARE."
            )
        request.chat = SimpleLazyObject(lambda: get_chat(request))  # type: ignore[attr-defined]
        request.achat = partial(aget_chat, request)  # type: ignore[attr-defined]

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ChatAuthError):
            return error_response(exception)
        return None
