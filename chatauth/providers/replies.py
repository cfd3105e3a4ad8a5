"""Reading a provider's answer: typed extraction of the fields a flow needs.

The drivers (:mod:`chatauth.http`) have already bounded the body (``RetryPolicy.max_body``)
when a flow receives a response. A flow reads it only through these functions, so that any
answer -- an HTML page with status 200, bad JSON, ``[]``, ``null``, a number where a string
belongs -- ends in a named error instead of ``KeyError`` or ``TypeError``:

* :func:`field` -- a value the flow cannot do without, of one type; anything else raises
  :class:`~chatauth.errors.ProviderError` ``ERROR_BAD_RESPONSE`` (the token endpoint answers
  it as 502 JSON);
* :func:`optional` -- a value the flow can do without: the wrong type counts as absent;
* :func:`token` -- a credential value, checked by :func:`~chatauth.tokens.check_token_value`:
  absent, blank or with white space raises :class:`~chatauth.errors.InvalidTokenError`;
* :func:`code` -- the provider's error code at a path (a string, or an integer given as its
  decimal string), or ``None``; never raises, since it reads refusals, which may be anything.

A *path* is a tuple of object keys from the top of the JSON body: ``("data", "authToken")``.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

import httpx

from chatauth.errors import ProviderError
from chatauth.http import read_json
from chatauth.tokens import check_token_value

__all__ = ["BAD_RESPONSE", "code", "field", "malformed", "optional", "token"]

T = TypeVar("T")
#: The ``code`` of a :class:`ProviderError` for an answer chatauth cannot read.
BAD_RESPONSE = "ERROR_BAD_RESPONSE"


def malformed(provider: str, response: httpx.Response, what: str) -> ProviderError:
    """The error for an answer that lacks ``what`` or holds it in the wrong shape.

    The message names the method, the status and what was missing, never a value from the
    body (it may hold a token).
    """
    return ProviderError(
        f"{provider} answered {response.request.method} with HTTP {response.status_code} "
        f"but no usable {what}.",
        provider=provider,
        status=response.status_code,
        code=BAD_RESPONSE,
    )


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _is(value: Any, kind: type[Any]) -> bool:
    # bool is an int to Python, never a count or a timestamp to a provider.
    if isinstance(value, bool) and kind is not bool:
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


@overload
def field(provider: str, response: httpx.Response, path: tuple[str, ...]) -> str: ...
@overload
def field(provider: str, response: httpx.Response, path: tuple[str, ...], kind: type[T]) -> T: ...
def field(
    provider: str, response: httpx.Response, path: tuple[str, ...], kind: type[Any] = str
) -> Any:
    """The value at ``path`` of the JSON body, which must be a ``kind`` (``str`` by default;
    ``float`` also takes integers; ``bool`` never passes as a number). A string must not be
    empty.

    Raises:
        ProviderError: ``ERROR_BAD_RESPONSE`` when the body is not JSON, the path is missing,
            or the value is of another type.
    """
    value = _dig(read_json(response), path)
    if not _is(value, kind) or (kind is str and not value):
        raise malformed(provider, response, ".".join(path) or "JSON body")
    return float(value) if kind is float else value


def optional(
    response: httpx.Response, path: tuple[str, ...], kind: type[T], default: T | None = None
) -> T | None:
    """The value at ``path`` if it is a ``kind``, else ``default`` (never raises)."""
    value = _dig(read_json(response), path)
    if not _is(value, kind):
        return default
    return float(value) if kind is float else value  # type: ignore[return-value]


def token(response: httpx.Response, path: tuple[str, ...]) -> str:
    """The credential at ``path``: a non-blank string without white space.

    Raises:
        InvalidTokenError: ``ERROR_BLANK_AUTHTOKEN`` when absent, not a string or blank,
            ``ERROR_AUTHTOKEN_WITH_SPACE`` when it holds white space.
    """
    value = _dig(read_json(response), path)
    check_token_value(value if isinstance(value, str) else "")
    assert isinstance(value, str)
    return value


def code(response: httpx.Response, path: tuple[str, ...]) -> str | None:
    """The provider's error code at ``path``: a non-empty string as is, an integer as its
    decimal string; ``None`` for anything else (never raises)."""
    value = _dig(read_json(response), path)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
