"""The chatauth error family (DESIGN §6).

Every error chatauth raises is a :class:`ChatAuthError` with a stable ``code`` that front ends
and logs can match on. Codes follow the CometChat SDK's local checks where one exists
(``ERROR_INVALID_UID``, ``ERROR_UID_WITH_SPACE``, ``ERROR_API_KEY_NOT_FOUND``,
``ERROR_BLANK_AUTHTOKEN``, ``ERROR_AUTHTOKEN_WITH_SPACE``).

Messages are built from non-secret context only: an API key or a token value never appears in
``str(error)``, ``repr(error)`` or the attributes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChatAuthError",
    "ConfigurationError",
    "InvalidTokenError",
    "InvalidUIDError",
    "NotAuthenticatedError",
    "ProviderError",
    "ProviderUnavailableError",
    "RefreshLimitError",
    "RequestBodyError",
    "RequestTooLargeError",
    "StoreUnavailableError",
    "UnsupportedMediaTypeError",
    "UnsupportedOperationError",
]


class ChatAuthError(Exception):
    """Base class of every chatauth error.

    Attributes:
        code: a stable machine-readable string, e.g. ``"ERROR_INVALID_UID"``.
        message: a human-readable explanation with no secret in it.
        unrevoked: tokens (:class:`~chatauth.tokens.ChatToken`) a failed provider flow had
            already minted and could not revoke on its way out (the provider was down too).
            The service queues them for ``revoke-pending``; empty almost always.
    """

    code: str = "ERROR_CHATAUTH"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.unrevoked: list[Any] = []
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"

    def to_dict(self) -> dict[str, object]:
        """The JSON body a token endpoint sends for this error: ``{"code", "message"}``."""
        return {"code": self.code, "message": self.message}


class ConfigurationError(ChatAuthError):
    """Missing or malformed settings, raised at start-up.

    ``code`` is ``ERROR_API_KEY_NOT_FOUND`` when a required secret (API key, admin token,
    signing key) is missing, ``ERROR_CONFIG`` otherwise. ``setting`` names the offending key.
    """

    code = "ERROR_CONFIG"

    def __init__(self, message: str, *, setting: str | None = None, code: str | None = None):
        super().__init__(message, code=code)
        self.setting = setting


class InvalidUIDError(ChatAuthError):
    """A UID the provider would refuse or silently change.

    ``code`` is ``ERROR_UID_WITH_SPACE`` for white space, ``ERROR_INVALID_UID`` otherwise
    (empty, too long, disallowed characters, a case the provider would fold).
    """

    code = "ERROR_INVALID_UID"

    def __init__(self, message: str, *, uid: str, provider: str, code: str | None = None):
        super().__init__(message, code=code)
        self.uid = uid
        self.provider = provider


class InvalidTokenError(ChatAuthError):
    """A token value that cannot be valid: blank (``ERROR_BLANK_AUTHTOKEN``) or containing
    white space (``ERROR_AUTHTOKEN_WITH_SPACE``)."""

    code = "ERROR_BLANK_AUTHTOKEN"


class NotAuthenticatedError(ChatAuthError):
    """No app user on the request: a chat session is only issued to a logged-in user."""

    code = "ERROR_NOT_AUTHENTICATED"

    def __init__(self, message: str = "No user is logged in to the app.") -> None:
        super().__init__(message)


class ProviderError(ChatAuthError):
    """The provider refused the call (a 4xx answer).

    Attributes:
        provider: provider name, e.g. ``"matrix"``.
        status: the HTTP status the provider answered.
        code: the provider's own error code (``"M_FORBIDDEN"``, ``"ERR_UID_NOT_FOUND"``, ...).
    """

    code = "ERROR_PROVIDER"

    def __init__(self, message: str, *, provider: str, status: int, code: str | None = None):
        super().__init__(message, code=code)
        self.provider = provider
        self.status = status


class ProviderUnavailableError(ChatAuthError):
    """The provider could not be reached or kept failing: timeouts, connection errors, 5xx or
    429 after the bounded retries.

    Attributes:
        retry_after: seconds the caller should wait before trying again (an int, at least 1);
            taken from the provider's ``Retry-After`` when it sent one. Token endpoints send it
            as their own ``Retry-After`` header with a 503.
        status: the last HTTP status seen, or ``None`` for a transport failure.
    """

    code = "ERROR_PROVIDER_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        retry_after: int = 5,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.retry_after = max(1, int(retry_after))
        self.status = status


class StoreUnavailableError(ProviderUnavailableError):
    """The token store (Redis, a database) could not be reached.

    A subclass of :class:`ProviderUnavailableError` so that token endpoints answer it the
    same way: 503 with ``Retry-After``. ``provider`` names the store (``"redis"``).
    """

    code = "ERROR_STORE_UNAVAILABLE"


class RequestBodyError(ChatAuthError):
    """An inbound request body chatauth's own endpoints refuse; answered 400.

    Codes: ``ERROR_INVALID_JSON`` (not UTF-8, not JSON, ``NaN``/``Infinity``, a lone UTF-16
    surrogate), ``ERROR_JSON_TOO_DEEP`` (nested deeper than the reader allows),
    ``ERROR_BAD_REQUEST`` (valid JSON that is not an object, a malformed ``Content-Length``).
    The message never quotes the body.
    """

    code = "ERROR_BAD_REQUEST"


class RequestTooLargeError(RequestBodyError):
    """The body is larger than the endpoint accepts (``ERROR_BODY_TOO_LARGE``); answered 413.

    Attributes:
        limit: the largest accepted body, in bytes.
    """

    code = "ERROR_BODY_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is larger than {limit} bytes.")
        self.limit = limit


class UnsupportedMediaTypeError(RequestBodyError):
    """The body is not declared as UTF-8 JSON (``ERROR_UNSUPPORTED_MEDIA_TYPE``); answered
    415. ``application/json`` and ``application/<anything>+json`` are accepted, with no
    ``charset`` or ``charset=utf-8``."""

    code = "ERROR_UNSUPPORTED_MEDIA_TYPE"

    def __init__(self) -> None:
        super().__init__("Send the body as Content-Type: application/json (UTF-8).")


class UnsupportedOperationError(ChatAuthError):
    """The provider has no documented call for a chat-user operation (update the profile,
    deactivate, erase), so chatauth refuses it instead of pretending: code
    ``ERROR_UNSUPPORTED_OPERATION``.

    Raised before any side effect (no session is ended, nothing is queued).

    Attributes:
        provider: provider name, e.g. ``"jwt"``.
        operation: ``"update"``, ``"deactivate"`` or ``"erase"``.
    """

    code = "ERROR_UNSUPPORTED_OPERATION"

    def __init__(self, message: str, *, provider: str, operation: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.operation = operation


class RefreshLimitError(ChatAuthError):
    """A chat session asked the refresh endpoint to replace its token too often
    (:mod:`chatauth.refresh`): answered 429 with ``Retry-After``.

    Attributes:
        retry_after: whole seconds (at least 1) until a replacement is allowed again.
    """

    code = "ERROR_REFRESH_LIMITED"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))
