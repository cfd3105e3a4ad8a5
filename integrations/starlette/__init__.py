"""Starlette and FastAPI adapter: ``ChatAuthMiddleware``, the chat routes, a logout helper.

::

    from chatauth.integrations.starlette import ChatAuthMiddleware, chat_routes, get_chat

    app = Starlette(
        routes=[..., *chat_routes()],            # GET /chat/token
        middleware=[
            Middleware(SessionMiddleware, secret_key=...),
            Middleware(AuthenticationMiddleware, backend=...),
            Middleware(ChatAuthMiddleware, chatauth=chatauth.from_settings({...})),
        ],
    )

    async def chat_page(request):
        chat = await get_chat(request)           # or: await request.state.chat
        ...

    async def logout(request):
        await end_chat_session(request)
        request.session.clear()

FastAPI: :mod:`chatauth.integrations.starlette.fastapi` (``Depends(current_chat)``).
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.starlette needs Starlette: "
        "pip install 'chatauth-middleware[starlette]'"
    ) from exc

from .chat import LazyChatSession, UserGetter, end_chat_session, get_chat, get_service
from .middleware import DEFAULT_SESSION_KEY, ChatAuthMiddleware
from .routes import chat_routes, provider_endpoint, token_answer, token_endpoint

__all__ = [
    "DEFAULT_SESSION_KEY",
    "ChatAuthMiddleware",
    "LazyChatSession",
    "UserGetter",
    "chat_routes",
    "end_chat_session",
    "get_chat",
    "get_service",
    "provider_endpoint",
    "token_answer",
    "token_endpoint",
]
