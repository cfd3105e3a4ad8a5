"""Every HTTP answer chatauth gives (DESIGN §5), shared by the framework adapters.

An answer is ``(status, body, headers)``: the token endpoint's, the errors', and those of the
extra endpoints a provider declares (:class:`ProviderEndpoint`, e.g. ChatKitty's verify URL).
Adapters only turn it into their framework's response class, so Django, Flask and Starlette
answer everything the same way. One rule for all of them:

- every body is JSON; an error body is ``{"error": {"code", "message"}}``;
- every answer carries :data:`NO_STORE` (``Cache-Control: no-store``, ``Vary: Cookie``): a
  bearer token must never sit in a cache, and the answer depends on the session cookie;
- every 5xx answer is logged once, at WARNING, on the ``chatauth`` logger, with its status,
  code and message (messages never hold a secret: :class:`~chatauth.errors.ChatAuthError`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from chatauth.bodies import ARequestBody, RequestBody, aread_json_object, read_json_object
from chatauth.errors import (
    ChatAuthError,
    ConfigurationError,
    InvalidTokenError,
    InvalidUIDError,
    NotAuthenticatedError,
    ProviderError,
    ProviderUnavailableError,
    RefreshLimitError,
    RequestBodyError,
    RequestTooLargeError,
    UnsupportedMediaTypeError,
)
from chatauth.session import ChatSession

__all__ = [
    "NO_STORE",
    "Answer",
    "ProviderEndpoint",
    "aendpoint_answer",
    "arefresh_answer",
    "atoken_answer",
    "endpoint_answer",
    "error_answer",
    "find_endpoint",
    "message_answer",
    "refresh_answer",
    "session_answer",
    "token_answer",
]

logger = logging.getLogger("chatauth")

#: Headers of every answer: no cache may keep it, and it varies with the session cookie.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache", "Vary": "Cookie"}

#: ``(status, JSON body, headers)``.
Answer = tuple[int, dict[str, Any], dict[str, str]]


def session_answer(session: ChatSession) -> Answer:
    """200 with the session JSON (``ChatSession.to_json``) and the no-store headers."""
    return 200, session.to_json(), dict(NO_STORE)


def message_answer(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    """An error answer that has no exception behind it (404, 405, 400 on a bad body).

    Args:
        status: the HTTP status.
        code: the stable error code (``ERROR_NOT_FOUND`` ...).
        message: words for a developer; never a secret.
        headers: extra headers (``Allow`` on a 405), added to :data:`NO_STORE`.
    """
    if status >= 500:
        logger.warning("chatauth answered %d %s: %s", status, code, message)
    return status, {"error": {"code": code, "message": message}}, {**NO_STORE, **(headers or {})}


def error_answer(exc: ChatAuthError) -> Answer:
    """The status, JSON body ``{"error": {"code", "message"}}`` and headers for an error.

    ===========================  ======  ==========================================
    RequestTooLargeError          413    a body over the endpoint's cap
    UnsupportedMediaTypeError     415    a body not declared as UTF-8 JSON
    RequestBodyError              400    a body that is not a JSON object (or too deep)
    NotAuthenticatedError         401    no app login on the request
    RefreshLimitError             429    with ``Retry-After``: too many token replacements
    ProviderUnavailableError      503    with ``Retry-After`` (seconds); also a store outage
    InvalidUIDError               422    the user's UID breaks the provider's rules
    InvalidTokenError             502    the provider answered an unusable token
    ProviderError                 502    the provider refused (its own code in ``code``)
    ConfigurationError            500    the app is misconfigured
    ===========================  ======  ==========================================

    A 5xx answer is logged (see the module docstring).
    """
    headers = dict(NO_STORE)
    if isinstance(exc, RequestTooLargeError):
        status = 413
    elif isinstance(exc, UnsupportedMediaTypeError):
        status = 415
    elif isinstance(exc, RequestBodyError):
        status = 400
    elif isinstance(exc, NotAuthenticatedError):
        status = 401
    elif isinstance(exc, ProviderUnavailableError):
        status = 503
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, RefreshLimitError):
        status = 429
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, InvalidUIDError):
        status = 422
    elif isinstance(exc, InvalidTokenError | ProviderError):
        status = 502
    elif isinstance(exc, ConfigurationError):
        status = 500
    else:
        status = 500
    if status >= 500:
        logger.warning("chatauth answered %d %s: %s", status, exc.code, exc.message)
    return status, {"error": exc.to_dict()}, headers


def token_answer(read: Callable[[], ChatSession]) -> Answer:
    """The token endpoint's answer (``GET <prefix>/token``, DESIGN §5).

    Args:
        read: returns the request's chat session (an adapter's per-request accessor) or
            raises a :class:`~chatauth.errors.ChatAuthError`.

    Returns:
        :func:`session_answer` or :func:`error_answer`.
    """
    try:
        return session_answer(read())
    except ChatAuthError as exc:
        return error_answer(exc)


async def atoken_answer(read: Callable[[], Awaitable[ChatSession]]) -> Answer:
    """Async twin of :func:`token_answer`."""
    try:
        return session_answer(await read())
    except ChatAuthError as exc:
        return error_answer(exc)


# -- the refresh endpoint -----------------------------------------------------------------------
def _rejected(payload: dict[str, Any]) -> str:
    value = payload.get("token")
    if not isinstance(value, str) or not value:
        raise RequestBodyError('Expected a JSON object {"token": "<the rejected token>"}.')
    return value


def refresh_answer(body: RequestBody, refresh: Callable[[str], ChatSession]) -> Answer:
    """The refresh endpoint's answer (``POST <prefix>/token/refresh``, DESIGN §5).

    Args:
        body: the request's headers and body reader, ``{"token": "<the rejected token>"}``
            (read by :func:`chatauth.bodies.read_json_object`).
        refresh: ``(rejected token) -> ChatSession``, the adapter's call of
            :meth:`chatauth.binding.ChatBinding.refresh` for this request.

    Returns:
        200 and the body of ``GET <prefix>/token`` (the new session, or the current one when
        the rejected token was already replaced); 415 for any body not declared as JSON (an
        HTML form cannot send that type cross-site without a CORS preflight, so a form on
        another site cannot post here: no CSRF token is needed); 400/413 for a body that is
        not ``{"token": "<non-empty string>"}`` within the reader's bounds; 429 with
        ``Retry-After`` past the replacement limit (:mod:`chatauth.refresh`); the token
        endpoint's error answers otherwise (401 without a login, 503 ...). The body is
        checked before the user or the session is looked at.
    """
    try:
        rejected = _rejected(read_json_object(body))
        return session_answer(refresh(rejected))
    except ChatAuthError as exc:
        return error_answer(exc)


async def arefresh_answer(
    body: ARequestBody, refresh: Callable[[str], Awaitable[ChatSession]]
) -> Answer:
    """Async twin of :func:`refresh_answer`, reading the body's chunk stream."""
    try:
        rejected = _rejected(await aread_json_object(body))
        return session_answer(await refresh(rejected))
    except ChatAuthError as exc:
        return error_answer(exc)


# -- endpoints a provider declares ---------------------------------------------------------------
Handler = Callable[[Any, Mapping[str, Any]], Answer]
AsyncHandler = Callable[[Any, Mapping[str, Any]], Awaitable[Answer]]


@dataclasses.dataclass(frozen=True)
class ProviderEndpoint:
    """An extra endpoint a provider needs the app to serve (ChatKitty's verify URL).

    Providers list them in ``endpoints``; every adapter serves ``<prefix>/<path>`` for the
    configured provider's endpoints and answers 404 for any other path, so no adapter names
    a provider. The caller is usually the provider's server, not a browser: no app login and
    no CSRF token are involved; the handler checks its own credential.

    Attributes:
        path: relative to the chat prefix, without a leading slash (``"chatkitty/verify"``).
        method: the HTTP method it answers (``"POST"``); others get 405.
        handle: ``(service, payload) -> Answer``; ``payload`` is the decoded JSON object body.
        ahandle: the async twin of ``handle``, for async adapters.
    """

    path: str
    method: str
    handle: Handler
    ahandle: AsyncHandler


def find_endpoint(service: Any, path: str, method: str) -> ProviderEndpoint | Answer:
    """The endpoint ``service.provider`` declares at ``path``, or the 404/405 answer.

    Args:
        service: the app's :class:`~chatauth.service.ChatAuth`.
        path: the request path after the chat prefix (``"chatkitty/verify"``).
        method: the request's HTTP method.
    """
    declared: tuple[ProviderEndpoint, ...] = getattr(service.provider, "endpoints", ())
    for endpoint in declared:
        if endpoint.path == path.strip("/"):
            if endpoint.method != method.upper():
                return message_answer(
                    405,
                    "ERROR_METHOD_NOT_ALLOWED",
                    f"This endpoint answers {endpoint.method} only.",
                    {"Allow": endpoint.method},
                )
            return endpoint
    return message_answer(
        404, "ERROR_NOT_FOUND", "The configured chat provider has no endpoint here."
    )


def endpoint_answer(service: Any, path: str, method: str, body: RequestBody) -> Answer:
    """Answer a request to a provider endpoint (404/405, a refused body, or the handler's).

    The body is read only once the endpoint is found, and only within the bounds of
    :func:`chatauth.bodies.read_json_object` (413, 415, 400 otherwise).

    Args:
        service: the app's :class:`~chatauth.service.ChatAuth`.
        path: the path after the chat prefix.
        method: the HTTP method.
        body: the request's headers and body reader (a JSON object is expected).
    """
    endpoint = find_endpoint(service, path, method)
    if not isinstance(endpoint, ProviderEndpoint):
        return endpoint
    try:
        payload = read_json_object(body)
    except RequestBodyError as exc:
        return error_answer(exc)
    return endpoint.handle(service, payload)


async def aendpoint_answer(service: Any, path: str, method: str, body: ARequestBody) -> Answer:
    """Async twin of :func:`endpoint_answer`, reading the body's chunk stream."""
    endpoint = find_endpoint(service, path, method)
    if not isinstance(endpoint, ProviderEndpoint):
        return endpoint
    try:
        payload = await aread_json_object(body)
    except RequestBodyError as exc:
        return error_answer(exc)
    return await endpoint.ahandle(service, payload)
