"""The pure ASGI middleware that puts a lazy chat session on every request.

Shaped like Starlette's own ``AuthenticationMiddleware``: it writes a value into the scope and
leaves everything else alone. Here the value is a :class:`LazyChatSession`, an accessor that
does nothing until awaited, so a request that never reads the chat session costs no store
read and no provider call.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import inspect
import logging
import secrets
from collections.abc import Callable, Generator, Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatauth.errors import ChatAuthError, ConfigurationError, NotAuthenticatedError
from chatauth.identity import ChatIdentity
from chatauth.service import ChatAuth
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken

__all__ = [
    "DEFAULT_SESSION_KEY",
    "ChatAuthMiddleware",
    "LazyChatSession",
    "UserGetter",
    "end_chat_session",
    "get_chat",
]

logger = logging.getLogger("chatauth.integrations.starlette")

#: The key under which the chat session's id lives in ``request.session``.
DEFAULT_SESSION_KEY = "_chatauth_sid"

#: ``(connection) -> user`` or ``async (connection) -> user``; the user may be ``None``.
UserGetter = Callable[[HTTPConnection], Any]


def _slot(session: Mapping[str, Any] | None, key: str) -> tuple[str, str | None] | None:
    """The ``(sid, uid)`` kept in the app session, or ``None``.

    ``uid`` is ``None`` while the id is unbound: minted when a response started, before any
    user asked for a chat token on this app session (see :class:`ChatAuthMiddleware`).
    """
    if session is None:
        return None
    raw = session.get(key)
    if isinstance(raw, Mapping):
        sid, uid = raw.get("sid"), raw.get("uid")
        if isinstance(sid, str) and sid and (uid is None or (isinstance(uid, str) and uid)):
            return sid, uid
    return None


def _entry(session: Mapping[str, Any] | None, key: str) -> tuple[str, str] | None:
    """The bound ``(sid, uid)`` pair kept in the app session, or ``None``: only a bound id can
    have a chat token under it."""
    slot = _slot(session, key)
    if slot is None or slot[1] is None:
        return None
    return slot[0], slot[1]


def _new_sid() -> str:
    return secrets.token_urlsafe(32)


def _successor(sid: str, uid: str) -> str:
    """The id that follows ``sid`` when ``uid`` takes over the app session.

    Derived rather than random so that concurrent first requests of the new user, which all
    carry the same old id, agree on one chat session instead of each issuing its own token.
    """
    digest = hmac.new(sid.encode(), uid.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class LazyChatSession:
    """The request's chat session, computed on first use and then memoised.

    The middleware puts one in ``request.scope["chat"]`` and ``request.state.chat`` for every
    HTTP and WebSocket connection. Nothing happens until you await it::

        chat = await request.state.chat          # or: await get_chat(request)
        chat.uid, chat.token.value, chat.client

    The first await resolves the app user (``scope["user"]`` or ``user_getter``), maps it to a
    chat identity, and calls :meth:`chatauth.ChatAuth.aget_session` with the app session's
    chat session id. That id is normally already in ``request.session``, put there by the
    middleware when the login response started; the first use binds it to the user's chat
    UID (or creates one, for an app session older than the middleware). The result (or the
    error) is kept for the rest of the request.

    Raises (from :meth:`get`):
        NotAuthenticatedError: no logged-in app user; also on a WebSocket whose app session
            has no chat session yet (a WebSocket cannot set the session cookie, so the chat
            session must be started by an HTTP request such as the token endpoint first).
        InvalidUIDError: the user's UID breaks the provider's rules.
        ProviderError, ProviderUnavailableError, StoreUnavailableError: from the core.
        ConfigurationError: neither ``AuthenticationMiddleware`` nor ``user_getter`` gives a
            user.
    """

    def __init__(self, middleware: ChatAuthMiddleware, scope: Scope) -> None:
        self._middleware = middleware
        self._scope = scope
        self._result: ChatSession | None = None
        self._error: ChatAuthError | None = None
        self._lock: asyncio.Lock | None = None
        self.ended = False
        #: The ``(sid, uid)`` the request started with, or created; watched by the middleware.
        self.watched: tuple[str, str] | None = _entry(self._session(), middleware.session_key)

    def __repr__(self) -> str:
        state = "loaded" if self._result is not None else "not loaded"
        return f"<LazyChatSession {state}>"

    @property
    def chatauth(self) -> ChatAuth:
        """The :class:`~chatauth.ChatAuth` this request's middleware was built with."""
        return self._middleware.chatauth

    @property
    def is_loaded(self) -> bool:
        """True once the chat session was fetched in this request."""
        return self._result is not None

    def __await__(self) -> Generator[Any, None, ChatSession]:
        return self.get().__await__()

    async def get(self) -> ChatSession:
        """The chat session of the logged-in user for this app session (see the class doc)."""
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._result is None and self._error is None:
                try:
                    self._result = await self._load()
                except ChatAuthError as exc:
                    self._error = exc
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    async def end(self) -> list[ChatToken]:
        """End this app session's chat session: drop its token and revoke it at the provider.

        A revocation the provider cannot take now is queued by the core (retry it with
        ``chatauth.arevoke_pending()`` or the ``chatauth revoke-pending`` command). The chat
        session id is removed from ``request.session``; the next use starts a new one.

        Returns:
            The tokens dropped (empty if this app session had no chat session).

        Raises:
            StoreUnavailableError: the token store is down; the id stays in the session so
                that the middleware's cleared-session check can try again.
        """
        session = self._session()
        key = self._middleware.session_key
        popped: list[ChatToken] = []
        if session is None:
            # No SessionMiddleware: chat sessions are per user (DESIGN §4), keyed without an id.
            try:
                popped = await self.chatauth.aend_session(await self._user(), None)
            except NotAuthenticatedError:
                popped = []
        else:
            ends = [e for e in (_entry(session, key), self.watched) if e is not None]
            for sid, uid in dict.fromkeys(ends):
                popped += await self._end_entry(sid, uid)
            session.pop(key, None)
        self.ended = True
        self.watched = None
        self._result = self._error = None
        return popped

    # -- internals ---------------------------------------------------------------------------
    def _session(self) -> dict[str, Any] | None:
        session: dict[str, Any] | None = self._scope.get("session")
        return session

    async def _user(self) -> Any:
        getter = self._middleware.user_getter
        if getter is not None:
            user = getter(HTTPConnection(self._scope))
            return await user if inspect.isawaitable(user) else user
        if "user" not in self._scope:
            raise ConfigurationError(
                "ChatAuthMiddleware needs a user: install AuthenticationMiddleware before it, "
                "or pass user_getter=.",
                setting="user_getter",
            )
        return self._scope["user"]

    async def _end_entry(self, sid: str, uid: str) -> list[ChatToken]:
        # The uid kept next to the id lets a logout end the chat session after the app has
        # already forgotten who was logged in.
        return await self.chatauth.aend_session(ChatIdentity(uid), sid)

    async def _app_session(self, identity: ChatIdentity) -> str | None:
        session = self._session()
        if session is None:
            return None
        key = self._middleware.session_key
        current = _slot(session, key)
        if current is not None and current[1] == identity.uid:
            return current[0]
        if self._scope["type"] == "websocket":
            # Binding the id to the UID is a session write, which a WebSocket cannot send
            # back; an unbound id left so would name a token that logout cannot find.
            raise NotAuthenticatedError(
                "This app session has no chat session yet; fetch the token endpoint over HTTP "
                "before opening the WebSocket."
            )
        if current is None:
            # An app session that no response of this middleware has seen yet (a login made
            # before it was installed). Concurrent first requests here still race.
            sid = _new_sid()
        elif current[1] is None:
            sid = current[0]
        else:
            # Another user logged in on this app session without logging out first: the
            # previous user's chat token must not outlive their login.
            await self._end_entry(current[0], current[1])
            sid = _successor(current[0], identity.uid)
        session[key] = {"sid": sid, "uid": identity.uid}
        self.watched = (sid, identity.uid)
        self.ended = False
        return sid

    async def _load(self) -> ChatSession:
        identity = self.chatauth.identity_for(await self._user())
        app_session = await self._app_session(identity)
        return await self.chatauth.aget_session(identity, app_session)


class ChatAuthMiddleware:
    """Pure ASGI middleware giving every request a lazy chat session.

    Install it after (inside) ``SessionMiddleware`` and ``AuthenticationMiddleware``::

        app = Starlette(routes=[..., *chat_routes()], middleware=[
            Middleware(SessionMiddleware, secret_key=...),
            Middleware(AuthenticationMiddleware, backend=...),
            Middleware(ChatAuthMiddleware, chatauth=chatauth),
        ])

    For ``http`` and ``websocket`` connections it sets ``scope["chat"]`` and
    ``request.state.chat`` to a :class:`LazyChatSession`; other scopes (``lifespan``) pass
    straight through. Nothing is read or issued until a view awaits it.

    The chat session id is random and kept in ``request.session[session_key]`` together with
    the chat UID, so it dies with the app session. Without ``SessionMiddleware`` there is no
    such id and one chat session is kept per user (token-auth APIs).

    When the id is made: the middleware has no login signal, so whenever an HTTP response
    starts with a non-empty app session that holds no id, it writes a fresh random one,
    unbound (``{"sid": ..., "uid": None}``); it is a session write only, no store or provider
    call. The login response is such a response (the view has just filled the session), so
    the browser holds the id *before* it can send its first chat requests, and concurrent
    first requests all ask for the same chat session: one token, none orphaned. The first
    chat use binds the id to the user's chat UID. The middleware cannot tell a logged-in
    session from an anonymous one with other data (flash messages) at that point, so those
    get an id too; it is inert, as no token is issued under an id until a logged-in user's
    request binds it, and tokens are kept per (UID, id). An unbound id alone in a session is
    removed again, so it never keeps an otherwise empty session cookie alive. No id is made
    for an empty session (anonymous, or cleared at logout), after :func:`end_chat_session`
    in the same request, or on WebSockets (they cannot set cookies). A user who logs in over
    another without clearing the session gets an id derived from the previous one and their
    UID, so their concurrent first requests agree as well.

    Logout: call :func:`end_chat_session` in the logout view. As a safety net, when an HTTP
    request started with a chat session id in its app session and the session no longer holds
    it when the response starts (``request.session.clear()``, a new login), the middleware
    ends that chat session *before* the response headers are sent, so a client that sees its
    logout answer knows the token is revoked or queued for revocation. A failure there is
    logged, never raised into the response.

    Args:
        app: the ASGI app to wrap.
        chatauth: the :class:`~chatauth.ChatAuth` to use (e.g. from
            ``chatauth.from_settings({...})``).
        user_getter: ``(connection) -> user`` (sync or async) instead of ``scope["user"]``
            from ``AuthenticationMiddleware``. ``None`` or a user whose ``is_authenticated``
            is false means nobody is logged in.
        session_key: the ``request.session`` key holding the chat session id and UID.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        chatauth: ChatAuth,
        user_getter: UserGetter | None = None,
        session_key: str = DEFAULT_SESSION_KEY,
    ) -> None:
        if not isinstance(chatauth, ChatAuth):
            raise ConfigurationError(
                "ChatAuthMiddleware(chatauth=...) must be a chatauth.ChatAuth instance, e.g. "
                "chatauth.from_settings({...}).",
                setting="chatauth",
            )
        self.app = app
        self.chatauth = chatauth
        self.user_getter = user_getter
        self.session_key = session_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        chat = LazyChatSession(self, scope)
        scope["chat"] = chat
        scope.setdefault("state", {})["chat"] = chat
        if scope["type"] != "http" or "session" not in scope:
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._end_if_cleared(scope, chat)
                self._prepare_id(scope, chat)
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _prepare_id(self, scope: Scope, chat: LazyChatSession) -> None:
        # Runs before SessionMiddleware (outside us) serialises the session into the cookie.
        session: dict[str, Any] | None = scope.get("session")
        if session is None:
            return
        slot = _slot(session, self.session_key)
        if slot is None:
            if session and not chat.ended:
                session[self.session_key] = {"sid": _new_sid(), "uid": None}
        elif slot[1] is None and len(session) == 1:
            del session[self.session_key]

    async def _end_if_cleared(self, scope: Scope, chat: LazyChatSession) -> None:
        watched = chat.watched
        if watched is None or chat.ended:
            return
        if _entry(scope.get("session"), self.session_key) == watched:
            return
        chat.watched = None
        try:
            await chat._end_entry(*watched)
        except ChatAuthError as exc:
            # Nothing to queue into when the store itself is down; say so loudly.
            logger.error(
                "chatauth could not end the chat session of uid %s after its app session was "
                "cleared (%s); end it with ChatAuth.end_all_sessions",
                watched[1],
                exc.code,
            )


def _chat(conn: HTTPConnection) -> LazyChatSession:
    chat = conn.scope.get("chat")
    assert isinstance(chat, LazyChatSession), (
        "ChatAuthMiddleware must be installed to access the chat session"
    )
    return chat


async def get_chat(conn: HTTPConnection) -> ChatSession:
    """The chat session of the logged-in user, for a ``Request`` or a ``WebSocket``.

    The same as ``await request.state.chat``; see :class:`LazyChatSession` for what it raises.
    """
    return await _chat(conn).get()


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
