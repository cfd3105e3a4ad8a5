"""System checks (``manage.py check``), ids ``chatauth.E001`` ... ``chatauth.E009``.

========= ===================================================================
E001      ``CHATAUTH`` missing, or its ``PROVIDER`` missing or unknown
E002      a secret the provider needs is missing (API key, JWT secret, token)
E003      ``ChatAuthMiddleware`` is not in ``MIDDLEWARE``
E004      ``ChatAuthMiddleware`` comes before ``AuthenticationMiddleware``
E005      unknown ``STORE``
E006      ``UID_MAPPER`` (or ``NAME_ATTRIBUTE``/``AVATAR_ATTRIBUTE``) path is bad
E007      another malformed or unknown ``CHATAUTH`` key
E008      ``CHATAUTH`` is not a dict
E009      a chat-user opt-in (``ERASE_CHAT_USER_ON_DELETE`` ...) the provider
          cannot do (it has no documented call for it)
========= ===================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils.module_loading import import_string

from chatauth.providers import registry

from .conf import CHAT_USER_KEYS, ChatAuthImproperlyConfigured, get_service, setting

__all__ = ["HINTS", "check_middleware", "check_settings"]

MIDDLEWARE = "chatauth.integrations.django.middleware.ChatAuthMiddleware"
AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"

HINTS = {
    "chatauth.E001": "Add CHATAUTH = {'PROVIDER': 'jwt', 'JWT_SECRET': ...} to your settings; "
    f"PROVIDER is one of {', '.join(registry())} or a dotted path to a provider class.",
    "chatauth.E002": "Set the provider's secret in CHATAUTH, read from the environment "
    "(e.g. 'JWT_SECRET': os.environ.get('CHATAUTH_JWT_SECRET')) and never committed; then set "
    "that environment variable (for HS256 at least 32 random bytes: "
    "python -c 'import secrets; print(secrets.token_urlsafe(32))').",
    "chatauth.E003": f"Add '{MIDDLEWARE}' to MIDDLEWARE, after '{AUTH_MIDDLEWARE}'.",
    "chatauth.E004": f"Move '{MIDDLEWARE}' below '{AUTH_MIDDLEWARE}' in MIDDLEWARE: it needs "
    "request.user.",
    "chatauth.E005": "Leave STORE out (or 'django') for the database store, or use "
    "'sqlite:///path.db', 'redis://host:6379/0' or a store instance.",
    "chatauth.E006": "Give a dotted path to a callable taking the user and returning a str "
    "(e.g. 'myapp.chat.uid_for'), or an attribute name such as 'username'.",
    "chatauth.E007": "Fix or remove the named key; see the CHATAUTH settings in the README.",
    "chatauth.E008": "CHATAUTH must be a dict: CHATAUTH = {'PROVIDER': ..., ...}.",
    "chatauth.E009": "Turn the key off: this provider has no documented call for that "
    "operation (docs/providers.md lists what each provider can do).",
}


def check_settings(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``CHATAUTH`` builds a :class:`ChatAuth`, exactly as the middleware will need it."""
    try:
        service = get_service()
    except ChatAuthImproperlyConfigured as exc:
        return [checks.Error(str(exc), hint=HINTS[exc.check_id], obj="CHATAUTH", id=exc.check_id)]
    supported: frozenset[str] = getattr(service.provider, "user_operations", frozenset())
    return [
        checks.Error(
            f"CHATAUTH {key.upper()} is on, but the {service.provider.name} provider cannot "
            f"{operation} a chat user.",
            hint=HINTS["chatauth.E009"],
            obj="CHATAUTH",
            id="chatauth.E009",
        )
        for key, operation in CHAT_USER_KEYS.items()
        if setting(key, False) and operation not in supported
    ]


def _is_subclass(path: str, base_path: str) -> bool:
    try:
        cls, base = import_string(path), import_string(base_path)
    except ImportError:
        return False
    return isinstance(cls, type) and isinstance(base, type) and issubclass(cls, base)


def check_middleware(
    app_configs: Sequence[Any] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``ChatAuthMiddleware`` (or a subclass) is installed after ``AuthenticationMiddleware``."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = [i for i, path in enumerate(middleware) if _is_subclass(path, MIDDLEWARE)]
    if not ours:
        return [
            checks.Error(
                "ChatAuthMiddleware is not in MIDDLEWARE: request.chat will not exist.",
                hint=HINTS["chatauth.E003"],
                obj="MIDDLEWARE",
                id="chatauth.E003",
            )
        ]
    auth = [i for i, path in enumerate(middleware) if _is_subclass(path, AUTH_MIDDLEWARE)]
    if not auth or auth[0] > ours[0]:
        return [
            checks.Error(
                "ChatAuthMiddleware must come after AuthenticationMiddleware in MIDDLEWARE.",
                hint=HINTS["chatauth.E004"],
                obj="MIDDLEWARE",
                id="chatauth.E004",
            )
        ]
    return []
