"""``ChatAuthMiddleware``: ``request.chat`` and ``await request.achat()``.

The same shape as Django's ``AuthenticationMiddleware`` (``request.user`` /
``request.auser``): ``request.chat`` is a ``SimpleLazyObject`` read on first use, and
``request.achat`` is its async twin for async views (forcing the lazy object there raises
Django's ``SynchronousOnlyOperation``, as ``request.user`` would). A request that never reads
either costs nothing.

What the chat session does on the request is the core's :class:`~chatauth.binding.ChatBinding`
over ``request.session`` (the app-session id lives there, so a flushed or expired session
never gets the old token back); this module only tells it where the session and the user are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin
from django.utils.functional import LazyObject, SimpleLazyObject, empty

from chatauth.binding import SESSION_KEY, ChatBinding, finish_needed, kept_session
from chatauth.errors import ChatAuthError
from chatauth.json_body import json_bytes
from chatauth.responses import Answer, error_answer
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

from .conf import get_service

__all__ = [
    "ChatAuthMiddleware",
    "aend_chat_session",
    "aget_chat",
    "binding",
    "end_chat_session",
    "error_response",
    "get_chat",
    "json_response",
    "request_user",
    "unwrap_user",
]


def binding(request: HttpRequest) -> ChatBinding:
    """The request's :class:`~chatauth.binding.ChatBinding` (made on first need).

    Raises:
        ImproperlyConfigured: ``SessionMiddleware`` is missing.
    """
    found: ChatBinding | None = getattr(request, "_chatauth", None)
    if found is None:
        session = getattr(request, "session", None)
        if session is None:
            raise ImproperlyConfigured(
                "chatauth needs django.contrib.sessions' SessionMiddleware in MIDDLEWARE."
            )
        kept: tuple[ChatSession, object] | None = getattr(request, "_chatauth_kept", None)
        if kept is None:
            # Django loads the session from its backend lazily: do not read it just to watch.
            found = ChatBinding(get_service(), session, watch=False)
        else:  # a kept chat session was read first: the binding takes it over
            found = ChatBinding(get_service(), session, started=kept[1], kept=kept[0])
        request._chatauth = found  # type: ignore[attr-defined]
    return found


def _kept(request: HttpRequest, user: Any) -> ChatSession | None:
    """The request's chat session when this process served it a moment ago
    (:func:`chatauth.binding.kept_session`), read without a binding and kept on the request
    with the slot's value it was read under (a binding made later takes both over). The
    session must be loaded already."""
    kept: tuple[ChatSession, object] | None = getattr(request, "_chatauth_kept", None)
    if kept is not None:
        return kept[0]
    session = getattr(request, "session", None)
    if session is None:
        return None
    started = session.get(SESSION_KEY)
    found = kept_session(get_service(), session, user, started)
    if found is not None:
        request._chatauth_kept = (found, started)  # type: ignore[attr-defined]
    return found


def unwrap_user(user: Any) -> Any:
    """The user inside ``user`` when it is a ``SimpleLazyObject`` (``request.user``), loaded
    now if it was not; anything else as it is.

    The core reads several attributes of the user per chat request (``is_authenticated``, the
    UID attribute, ``chat_uid``, the display name). Through the lazy object each read runs
    Python-level ``__getattribute__`` and ``__getattr__``, and a missing one (``chat_uid`` on
    most user models) raises twice: mapping the user took 6.2 microseconds against 0.8.
    """
    if isinstance(user, LazyObject):
        if user._wrapped is empty:
            user._setup()
        return user._wrapped
    return user


def request_user(request: HttpRequest) -> Any:
    """``request.user`` through :func:`unwrap_user`; ``None`` without
    ``AuthenticationMiddleware``."""
    return unwrap_user(getattr(request, "user", None))


def get_chat(request: HttpRequest) -> ChatSession:
    """The chat session of the request's user for its app session (decided once per request;
    one this process served a moment ago is answered without a binding, :func:`_kept`).

    Raises:
        NotAuthenticatedError: nobody is logged in. Other :class:`ChatAuthError` subclasses
            when the provider or the store fails (the same error for the rest of the request).
    """
    if getattr(request, "_chatauth", None) is None:
        user = request_user(request)
        kept = _kept(request, user)
        if kept is not None:
            return kept
        return binding(request).get(lambda: user)
    return binding(request).get(partial(request_user, request))


async def _auser(request: HttpRequest) -> Any:
    auser = getattr(request, "auser", None)
    if auser is not None:  # Django >= 5.0
        return await auser()
    return await sync_to_async(request_user)(request)  # Django 4.2: loaded in a worker thread


async def _aload_session(request: HttpRequest) -> None:
    session = getattr(request, "session", None)
    # Load the session from its backend in a worker thread; later reads are in memory. Once
    # loaded (``request.auser()`` or an earlier chat use did it) SessionBase keeps
    # ``_session_cache``: no hop then, which would cost more than the whole cached read.
    if session is not None and not hasattr(session, "_session_cache"):
        await sync_to_async(session.keys)()


async def _loaded_binding(request: HttpRequest) -> ChatBinding:
    found = binding(request)
    await _aload_session(request)
    return found


async def aget_chat(request: HttpRequest) -> ChatSession:
    """Async twin of :func:`get_chat`: the user and the session are loaded without blocking
    the event loop, the provider is called with an async HTTP client."""
    if getattr(request, "_chatauth", None) is None:
        user = await _auser(request)
        await _aload_session(request)
        kept = _kept(request, user)
        if kept is not None:
            return kept

        async def loaded() -> Any:
            return user

        return await binding(request).aget(loaded)
    return await (await _loaded_binding(request)).aget(partial(_auser, request))


def end_chat_session(request: HttpRequest) -> list[ChatToken]:
    """End this app session's chat session (Django's ``logout()`` does it by itself).

    Returns:
        The tokens dropped. Raises ``StoreUnavailableError`` when the store is down.
    """
    return binding(request).end()


async def aend_chat_session(request: HttpRequest) -> list[ChatToken]:
    """Async twin of :func:`end_chat_session`."""
    return await (await _loaded_binding(request)).aend()


def json_response(answer: Answer) -> HttpResponse:
    """An ``application/json`` ``HttpResponse`` for a :mod:`chatauth.responses` answer.

    The body is the core's bytes (:func:`chatauth.json_body.json_bytes`, the same the other
    adapters send): a chat session served from the process's cache answers with the body it
    encoded once, instead of ``JsonResponse`` encoding it again on every request.
    """
    status, body, headers = answer
    return HttpResponse(
        json_bytes(body), content_type="application/json", status=status, headers=headers
    )


def error_response(exc: ChatAuthError) -> HttpResponse:
    """The JSON answer for a chatauth error (:func:`chatauth.responses.error_answer`)."""
    return json_response(error_answer(exc))


def _watch_then_flush(request: HttpRequest, flush: Callable[[], None]) -> None:
    binding(request).watch()
    flush()


async def _awatch_then_aflush(request: HttpRequest, aflush: Callable[[], Awaitable[None]]) -> None:
    (await _loaded_binding(request)).watch()
    await aflush()


class ChatAuthMiddleware(MiddlewareMixin):
    """Sets ``request.chat`` (lazy) and ``request.achat`` (async); sync- and async-capable.

    Install it after ``django.contrib.auth.middleware.AuthenticationMiddleware``. A
    :class:`~chatauth.errors.ChatAuthError` escaping a view (an anonymous user reading
    ``request.chat``, a provider outage) becomes the JSON error answer of DESIGN §5: 401, 503
    with ``Retry-After``, ... Before the session is saved, the response gets the binding's
    end-of-request step (:meth:`chatauth.binding.ChatBinding.finish`) when the view touched
    the session.

    Raises:
        ImproperlyConfigured: at start-up, when ``CHATAUTH`` is wrong (the message names the
            setting; ``manage.py check`` gives the same with a hint).
    """

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        get_service()  # fail at start-up, not on the first request that reads request.chat

    def process_request(self, request: HttpRequest) -> None:
        if not hasattr(request, "user"):
            raise ImproperlyConfigured(
                "ChatAuthMiddleware needs request.user: put it after "
                "'django.contrib.auth.middleware.AuthenticationMiddleware' in MIDDLEWARE."
            )
        request.chat = SimpleLazyObject(lambda: get_chat(request))  # type: ignore[attr-defined]
        request.achat = partial(aget_chat, request)  # type: ignore[attr-defined]
        session = getattr(request, "session", None)
        if session is not None:
            # Django sends no signal before login() of another user flushes the session:
            # note the chat session it held (loading the session only then), so that
            # process_response ends it, as a logout would.
            session.flush = partial(_watch_then_flush, request, session.flush)
            if hasattr(session, "aflush"):  # Django >= 5.0: alogin()
                session.aflush = partial(_awatch_then_aflush, request, session.aflush)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, ChatAuthError):
            return error_response(exception)
        return None

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        session = getattr(request, "session", None)
        # An untouched session cannot have changed: skip loading it. A loaded one that the
        # request left unchanged (``modified`` false) still holds the value it started with,
        # so the core can tell from it that finish() would do nothing, and no binding is made.
        if (
            session is not None
            and session.accessed
            and finish_needed(session, session.get(SESSION_KEY))
        ):
            binding(request).finish()
        return response
