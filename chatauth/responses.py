"""The token endpoint's HTTP answers (DESIGN §5), shared by every framework adapter.

Adapters only translate ``(status, body, headers)`` into their framework's response class,
so Django, Flask and Starlette answer the same errors the same way.
"""

from __future__ import annotations

from typing import Any

from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    InvalidTokenError,
    InvalidUIDError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
)
from chatauth.session import ChatSession

__all__ = ["NO_STORE", "Answer", "error_answer", "session_answer"]

#: Headers of every token endpoint answer: a bearer token must never sit in a cache.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

Answer = tuple[int, dict[str, Any], dict[str, str]]


def session_answer(session: ChatSession) -> Answer:
    """200 with the session JSON (``ChatSession.to_json``) and no-store headers."""
    return 200, session.to_json(), dict(NO_STORE)


def error_answer(exc: ChatAuthError) -> Answer:
    """The status, JSON body ``{"error": {"code", "message"}}`` and headers for an error.

    ===========================  ======  ==========================================
    NotAuthenticatedError         401    no app login on the request
    ProviderUnavailableError      503    with ``Retry-After`` (seconds); also a store outage
    InvalidUIDError               422    the user's UID breaks the provider's rules
    InvalidTokenError             502    the provider answered an unusable token
    ProviderError                 502    the provider refused (its own code in ``code``)
    ConfigurationError            500    the app is misconfigured
    ===========================  ======  ==========================================
    """
    headers = dict(NO_STORE)
    if isinstance(exc, NotAuthenticatedError):
        status = 401
    elif isinstance(exc, ProviderUnavailableError):
        status = 503
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, InvalidUIDError):
        status = 422
    elif isinstance(exc, InvalidTokenError | ProviderError):
        status = 502
    elif isinstance(exc, ConfigurationError):
        status = 500
    else:
        status = 500
    return status, {"error": exc.to_dict()}, headers
