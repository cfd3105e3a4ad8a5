"""Django adapter: ``INSTALLED_APPS += ["chatauth.integrations.django"]``.

Add ``chatauth.integrations.django.middleware.ChatAuthMiddleware`` after Django's
``AuthenticationMiddleware``, a ``CHATAUTH = {...}`` dict to the settings and
``path("chat/", include("chatauth.integrations.django.urls"))`` to the URLconf. Views then read
``request.chat`` (a lazy :class:`~chatauth.session.ChatSession`, like ``request.user``) or
``await request.achat()`` in async views. Logging out ends the chat session. See DESIGN §7.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on installed extras
    raise ImportError(
        "chatauth.integrations.django needs Django: pip install 'chatauth-middleware[django]'"
    ) from exc
