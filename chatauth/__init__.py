"""chatauth: every logged-in user of your web app is also a logged-in user of your chat.

The core is framework-neutral; adapters live in ``chatauth.integrations.{django,flask,
starlette}``. Start with :func:`chatauth.from_settings` or :class:`chatauth.ChatAuth`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    InvalidTokenError,
    InvalidUIDError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    StoreUnavailableError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:
    from chatauth.config import from_settings
    from chatauth.identity import ChatIdentity, IdentityMapper, UIDRules
    from chatauth.journal import EndJournal
    from chatauth.service import ChatAuth, RevocationReport, SweepReport
    from chatauth.session import ChatSession
    from chatauth.tokens import ChatToken, SessionKey

# Loaded on first use, so that ``import chatauth`` (for its errors, as every adapter module
# does) costs little more than starting Python: the service pulls in httpx, stamina and
# pyjwt; the types pull in dataclasses (and with it inspect) and hashlib (OpenSSL).
_LAZY = {
    "ChatAuth": "chatauth.service",
    "RevocationReport": "chatauth.service",
    "SweepReport": "chatauth.service",
    "EndJournal": "chatauth.journal",
    "from_settings": "chatauth.config",
    "ChatIdentity": "chatauth.identity",
    "IdentityMapper": "chatauth.identity",
    "UIDRules": "chatauth.identity",
    "ChatSession": "chatauth.session",
    "ChatToken": "chatauth.tokens",
    "SessionKey": "chatauth.tokens",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("chatauth-middleware")
        except PackageNotFoundError:  # pragma: no cover - a source tree, not installed
            return "0.0.0"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chatauth' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ChatAuth",
    "ChatAuthError",
    "ChatIdentity",
    "ChatSession",
    "ChatToken",
    "ConfigurationError",
    "EndJournal",
    "IdentityMapper",
    "InvalidTokenError",
    "InvalidUIDError",
    "NotAuthenticatedError",
    "ProviderError",
    "ProviderUnavailableError",
    "RevocationReport",
    "SessionKey",
    "StoreUnavailableError",
    "SweepReport",
    "UIDRules",
    "UnsupportedOperationError",
    "__version__",
    "from_settings",
]
