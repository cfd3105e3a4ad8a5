"""chatauth: every logged-in user of your web app is also a logged-in user of your chat.

The core is framework-neutral; adapters live in ``chatauth.integrations.{django,flask,
starlette}``. Start with :func:`chatauth.from_settings` or :class:`chatauth.ChatAuth`.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from chatauth.config import from_settings
from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    InvalidTokenError,
    InvalidUIDError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    StoreUnavailableError,
)
from chatauth.identity import ChatIdentity, IdentityMapper, UIDRules
from chatauth.service import ChatAuth, RevocationReport
from chatauth.session import ChatSession
from chatauth.tokens import ChatToken, SessionKey

try:
    __version__ = version("chatauth-middleware")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "ChatAuth",
    "ChatAuthError",
    "ChatIdentity",
    "ChatSession",
    "ChatToken",
    "ConfigurationError",
    "IdentityMapper",
    "InvalidTokenError",
    "InvalidUIDError",
    "NotAuthenticatedError",
    "ProviderError",
    "ProviderUnavailableError",
    "RevocationReport",
    "SessionKey",
    "StoreUnavailableError",
    "UIDRules",
    "__version__",
    "from_settings",
]
