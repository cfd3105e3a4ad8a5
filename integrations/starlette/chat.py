"""The request's chat session for Starlette and FastAPI: the lazy accessor and the helpers.

What a chat session does on a request is decided by the core's
:class:`~chatauth.binding.ChatBinding`; this module only says where Starlette keeps the
session mapping (``scope["session"]``) and the user (``scope["user"]`` or ``user_getter``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection
from starlette.types import Scope

from chatauth.binding import SESSION_KEY, ChatBinding, finish_needed, kept_session
from chatauth.errors import ConfigurationError
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

if TYPE_CHECKING:
    # The service (and httpx, stamina) loads with the ChatAuth an app makes, not with this
    # module.
    from chatauth.service import ChatAuth

__all__ = [
    "LazyChatSession",
    "UserGetter",
    "end_chat_session",
    "get_chat",
    "get_service",
]

#: ``(connection) -> user`` or ``async (connection) -> user``; the user may be ``None``.
UserGetter = Callable[[HTTPConnection], Any]


class LazyChatSession:
    """The request's chat session, computed on first await and then kept for the request.

    ``ChatAuthMiddleware`` puts one in ``scope["chat"]`` and ``request.state.chat`` for every
    HTTP and WebSocket connection; nothing happens until it is awaited::

        chat = await request.state.chat          # or: await get_chat(request)

    Raises (when awaited): :class:`~chatauth.NotAuthenticatedError` without a logged-in user
    (and on a WebSocket whose app session has no chat session yet: fetch the token endpoint
    over HTTP first), and the core's errors; see :meth:`chatauth.binding.ChatBinding.get`.
    The outcome, error included, is kept for the rest of the request.
    """

    __slots__ = (
        "_binding",
        "_kept",
        "_scope",
        "_session",
        "_session_key",
        "_started",
        "_user_getter",
        "chatauth",
    )

    def __init__(
        self,
        chatauth: ChatAuth,
        scope: Scope,
        user_getter: UserGetter | None = None,
        session_key: str = SESSION_KEY,
    ) -> None:
        self.chatauth = chatauth
        self._scope: Scope | None = scope
        self._user_getter = user_getter
        self._session_key = session_key
        self._session = session = scope.get("session")
        # The one thing read up front (a dict lookup, nothing parsed): the binding made later
        # watches the id the request started with.
        self._started = session.get(session_key) if session is not None else None
        self._binding: ChatBinding | None = None
        # The chat session kept_session answered, until a binding is made and takes it over.
        self._kept: ChatSession | None = None

    @property
    def binding(self) -> ChatBinding:
        """The core's per-request state for this connection, made on first use."""
        if self._binding is None:
            scope = self._scope
            self._binding = ChatBinding(
                self.chatauth,
                self._session,
                key=self._session_key,
                # a WebSocket cannot send the session back; nor can a request that is over
                writable=scope is not None and scope["type"] == "http",
                started=self._started,
                kept=self._kept,
            )
            self._kept = None  # the binding answers from now on (end() changes its answer)
        return self._binding

    def __repr__(self) -> str:
        return f"<LazyChatSession {'loaded' if self.is_loaded else 'not loaded'}>"

    @property
    def is_loaded(self) -> bool:
        """True once the chat session was fetched in this request."""
        if self._binding is None:
            return self._kept is not None
        return self._binding.is_loaded

    def finish_due(self) -> bool:
        """Whether the response start needs :meth:`chatauth.binding.ChatBinding.afinish`
        (:func:`chatauth.binding.finish_needed`): a plain check, so that a request whose
        session ends as it started pays no coroutine either, whether it read chat or not
        (binding an id, ending a session, clearing it all change the session)."""
        return finish_needed(self._session, self._started, self._session_key)

    def release(self) -> None:
        """The request is over: let go of its scope. The scope holds this object, so keeping
        it would leave every request's scope to the cyclic garbage collector rather than
        freeing it at once. A chat session read (or ended) in the request stays readable."""
        self._scope = None

    def __await__(self) -> Generator[Any, None, ChatSession]:
        return self.get().__await__()

    def kept(self) -> ChatSession | None:
        """The request's chat session if it is known without an await: a session this process
        served a moment ago (:func:`chatauth.binding.kept_session`), found once and kept for
        the request until a binding is made; ``None`` when :meth:`get` has to decide."""
        kept = self._kept
        if kept is None and self._binding is None and self._user_getter is None:
            scope = self._scope
            if scope is not None:  # the user is in the scope already
                kept = self._kept = kept_session(
                    self.chatauth,
                    self._session,
                    scope.get("user"),
                    self._started,
                    self._session_key,
                )
        return kept

    async def get(self) -> ChatSession:
        """The chat session of the logged-in user for this app session."""
        kept = self.kept()
        if kept is not None:
            return kept
        return await self.binding.aget(self._user)

    async def refresh(self, rejected: str) -> ChatSession:
        """Replace the token the chat SDK ``rejected`` and return the session to use now
        (:meth:`chatauth.binding.ChatBinding.arefresh`)."""
        return await self.binding.arefresh(self._user, rejected)

    async def end(self) -> list[ChatToken]:
        """End this app session's chat session; see :func:`end_chat_session`."""
        return await self.binding.aend(self._user)

    async def _user(self) -> Any:
        if self._scope is None:
            raise ConfigurationError(
                "The chat session of a request can only be read while the request runs."
            )
        if self._user_getter is not None:
            user = self._user_getter(HTTPConnection(self._scope))
            return await user if inspect.isawaitable(user) else user
        if "user" not in self._scope:
            raise ConfigurationError(
                "ChatAuthMiddleware needs a user: install AuthenticationMiddleware before it, "
                "or pass user_getter=.",
                setting="user_getter",
            )
        return self._scope["user"]


def _chat(conn: HTTPConnection) -> LazyChatSession:
    chat = conn.scope.get("chat")
    assert isinstance(chat, LazyChatSession), (
        "ChatAuthMiddleware must be installed to access the chat session"
    )
    return chat


def get_service(conn: HTTPConnection) -> ChatAuth:
    """The core :class:`~chatauth.ChatAuth` service of this request's ``ChatAuthMiddleware``
    (e.g. ``get_service(request).aend_all_sessions(user)`` after a password change)."""
    return _chat(conn).chatauth


async def get_chat(conn: HTTPConnection) -> ChatSession:
    """The chat session of the logged-in user, for a ``Request`` or a ``WebSocket``.

    The same as ``await request.state.chat``; see :class:`LazyChatSession` for what it raises.
    """
    chat = _chat(conn)
    # The common read (a session served a moment ago) without the coroutine of get().
    kept = chat.kept()
    if kept is not None:
        return kept
    return await chat.get()


async def end_chat_session(conn: HTTPConnection) -> list[ChatToken]:
    """End the chat session of this app session; call it from your logout view.

    Works before or after ``request.session.clear()``::

        async def logout(request):
            await end_chat_session(request)
            request.session.clear()
            return RedirectResponse("/", status_code=303)

    Returns:
        The tokens dropped (empty when the app session never used chat).

    Raises:
        StoreUnavailableError: the token store is down (provider outages are queued, not
            raised).
    """
    return await _chat(conn).end()
