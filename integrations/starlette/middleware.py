"""The pure ASGI middleware that puts a lazy chat session on every request.

Shaped like Starlette's own ``AuthenticationMiddleware``: it writes a value into the scope and
leaves everything else alone. The value is a :class:`~.chat.LazyChatSession`, which does
nothing until awaited; the rules it follows are the core's (:mod:`chatauth.binding`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatauth.binding import SESSION_KEY
from chatauth.errors import ConfigurationError

from .chat import LazyChatSession, UserGetter, end_chat_session, get_chat, get_service

__all__ = [
    "DEFAULT_SESSION_KEY",
    "ChatAuthMiddleware",
    "LazyChatSession",
    "UserGetter",
    "end_chat_session",
    "get_chat",
    "get_service",
]

if TYPE_CHECKING:
    from chatauth.service import ChatAuth

#: The key under which the chat session's id lives in ``request.session``.
DEFAULT_SESSION_KEY = SESSION_KEY


class ChatAuthMiddleware:
    """Pure ASGI middleware giving every request a lazy chat session.

    Install it after (inside) ``SessionMiddleware`` and ``AuthenticationMiddleware``::

        app = Starlette(routes=[..., *chat_routes()], middleware=[
            Middleware(SessionMiddleware, secret_key=...),
            Middleware(AuthenticationMiddleware, backend=...),
            Middleware(ChatAuthMiddleware, chatauth=chatauth),
        ])

    For ``http`` and ``websocket`` connections it sets ``scope["chat"]`` and
    ``request.state.chat`` to a :class:`~.chat.LazyChatSession`; other scopes (``lifespan``)
    pass straight through. When an HTTP response starts (before ``SessionMiddleware``, outside
    it, writes the cookie) it calls :meth:`chatauth.binding.ChatBinding.afinish`: a session
    cleared during the request ends its chat session before the client sees the answer, and
    a logged-in session gets its app-session id. A request that never reads chat and leaves
    the session unchanged does no chat work: nothing is parsed, no binding is made, no store
    is called (:func:`chatauth.binding.finish_needed`). Without ``SessionMiddleware`` there is
    one chat session per user (token-auth APIs).

    Args:
        app: the ASGI app to wrap.
        chatauth: the :class:`~chatauth.ChatAuth` to use (``chatauth.from_settings({...})``).
        user_getter: ``(connection) -> user`` (sync or async) instead of ``scope["user"]``
            from ``AuthenticationMiddleware``. ``None`` or a user whose ``is_authenticated``
            is false means nobody is logged in.
        session_key: the ``request.session`` key holding the chat session id and UID.

    Raises:
        ConfigurationError: ``chatauth`` is not a :class:`~chatauth.ChatAuth`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        chatauth: ChatAuth,
        user_getter: UserGetter | None = None,
        session_key: str = DEFAULT_SESSION_KEY,
    ) -> None:
        # Imported here: the app's ChatAuth has loaded the service already; importing this
        # module alone does not (httpx, stamina).
        from chatauth.service import ChatAuth

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
        chat = LazyChatSession(self.chatauth, scope, self.user_getter, self.session_key)
        scope["chat"] = chat
        scope.setdefault("state", {})["chat"] = chat
        try:
            if scope["type"] != "http" or "session" not in scope:
                await self.app(scope, receive, send)
                return

            async def send_wrapper(message: Message) -> None:
                if message["type"] == "http.response.start" and chat.finish_due():
                    await chat.binding.afinish()
                await send(message)

            await self.app(scope, receive, send_wrapper)
        finally:
            chat.release()
