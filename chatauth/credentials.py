"""Chat sessions of API clients, bound to the credential they authenticate with.

A mobile app or a single-page app sends a bearer credential with each request (a REST
framework token, a SimpleJWT refresh token's family, an allauth headless session token, a
FastAPI bearer token) instead of a session cookie. Its chat session is bound to that credential:
the app-session id of its :class:`~chatauth.tokens.SessionKey` is :func:`credential_session_id`
of the credential, so

- two devices of one user (two credentials) hold two chat tokens, as two browsers do;
- the chat session ends when the credential ends: the adapter calls
  :func:`end_credential_session` from the credential's own end (a token row deleted, a refresh
  token blacklisted, a logout), with the same credential value.

The id is a keyed hash (HMAC-SHA256 with the app's secret key): the raw credential is never
stored, and the id cannot be recomputed from a leaked store without the app's secret. Stores
index it by its sha256 digest anyway (:attr:`~chatauth.tokens.SessionKey.digest`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatauth.errors import ConfigurationError

if TYPE_CHECKING:
    from chatauth.service import ChatAuth
    from chatauth.tokens import ChatToken

__all__ = [
    "aend_credential_session",
    "credential_session_id",
    "end_credential_session",
    "header_credential",
]

# Domain separation: the same secret key signs other things in the app (Django's SECRET_KEY).
_SALT = b"chatauth.credential-session\x1f"


def credential_session_id(credential: str, secret: str | bytes) -> str:
    """The app-session id of the chat session bound to ``credential``.

    Args:
        credential: the credential's identifying value: a REST framework token key, an allauth
            session token, a SimpleJWT token family id, a bearer token. Non-empty.
        secret: the app's secret key (Django's ``SECRET_KEY``; in FastAPI, yours). The same
            one must be given where the session is ended.

    Returns:
        ``"api-"`` and 43 URL-safe characters (256 bits), stable for a credential and secret.

    Raises:
        ConfigurationError: ``secret`` is empty (the id would be a plain hash).
        ValueError: ``credential`` is empty.
    """
    if not secret:
        raise ConfigurationError("An API credential's chat session needs the app's secret key.")
    if not credential:
        raise ValueError("an empty credential")
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(_SALT + key, credential.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "api-" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def header_credential(header: Callable[[str], str | None]) -> str | None:
    """The credential an API request carries in its headers, when its authentication does not
    say: the ``X-Session-Token`` (allauth headless), else the token of ``Authorization:
    <scheme> <token>`` (``Bearer``, ``Token``, ...). ``None`` when there is neither.

    Args:
        header: ``(name) -> value or None``, the framework's case-insensitive header lookup.
    """
    token = header("X-Session-Token")
    if token:
        return token
    scheme, _, value = (header("Authorization") or "").strip().partition(" ")
    value = value.strip()
    return value if scheme and value else None


def end_credential_session(
    service: ChatAuth, user: Any, credential: str, secret: str | bytes
) -> list[ChatToken]:
    """End the chat session bound to ``credential`` (call it where the credential ends).

    Durable as a logout (:meth:`~chatauth.ChatAuth.end_session_durably`): with the store down
    the end is journaled for the sweep.

    Returns:
        The tokens dropped (empty when the credential had no chat session).

    Raises:
        NotAuthenticatedError, InvalidUIDError: ``user`` maps to no valid chat identity.
        StoreUnavailableError: the store is down and the service has no journal.
    """
    return service.end_session_durably(user, credential_session_id(credential, secret))


async def aend_credential_session(
    service: ChatAuth, user: Any, credential: str, secret: str | bytes
) -> list[ChatToken]:
    """Async twin of :func:`end_credential_session`."""
    return await service.aend_session_durably(user, credential_session_id(credential, secret))
