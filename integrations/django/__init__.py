"""Django adapter: ``INSTALLED_APPS += ["chatauth.integrations.django"]``.

Add ``chatauth.integrations.django.middleware.ChatAuthMiddleware`` after Django's
``AuthenticationMiddleware``, a ``CHATAUTH = {...}`` dict to the settings and
``path("chat/", include("chatauth.integrations.django.urls"))`` to the URLconf. Views then read
``request.chat`` (a lazy :class:`~chatauth.session.ChatSession`, like ``request.user``) or
``await request.achat()`` in async views. Logging out ends the chat session. See DESIGN §7.

``get_service()`` is the core service; ``end_chat_session(request)`` ends a chat session by
hand (both loaded on first use: this package is imported before Django's apps are ready).
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.django needs Django: pip install 'chatauth-middleware[django]'"
    ) from exc

import importlib
from typing import Any

from chatauth.deprecation import deprecated_aliases

__all__ = ["aend_chat_session", "end_chat_session", "get_service"]

_LAZY = {
    "get_service": ".conf",
    "end_chat_session": ".middleware",
    "aend_chat_session": ".middleware",
}
_deprecated = deprecated_aliases(
    __name__, {"get_chatauth": ("chatauth.integrations.django.conf", "get_service")}
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        return _deprecated(name)
    return getattr(importlib.import_module(module, __name__), name)
