"""Inbound request bodies: read within a size cap, parsed as JSON that cannot recurse deeply.

Every endpoint chatauth serves that takes a body (a provider's declared endpoint such as
ChatKitty's verify URL, the token refresh) reads it here, so Django, Flask and Starlette refuse
the same bodies the same way. An adapter hands over the raw material and nothing else:

- the ``Content-Type`` and ``Content-Length`` header values as received (``None`` if absent);
- a way to read the body: a blocking ``read(n)`` (WSGI: ``request.stream.read``, Django's
  ``request.read``) in a :class:`RequestBody`, or the async chunk stream (Starlette's
  ``request.stream()``) in an :class:`ARequestBody`.

The checks, in order, each before any work the next one costs:

1. a declared ``Content-Length`` above the cap: 413, nothing read;
2. a media type other than UTF-8 JSON: 415;
3. the body read in chunks, refused (413) as soon as more than the cap has arrived, so a chunked
   or lying upload never sits in memory beyond ``limit`` plus one chunk;
4. not UTF-8: 400; nesting (``[``/``{``, outside strings) deeper than ``max_depth``: 400,
   decided by a linear scan *before* :func:`json.loads`, whose recursion is what a body of
   100,000 ``[`` turned into a ``RecursionError`` and a 500;
5. not JSON, ``NaN``/``Infinity``, a lone surrogate escape (``"\\ud800"``, which no handler could
   encode back to UTF-8), or not an object: 400.

Each refusal is a :class:`~chatauth.errors.RequestBodyError` (413:
:class:`~chatauth.errors.RequestTooLargeError`, 415:
:class:`~chatauth.errors.UnsupportedMediaTypeError`) whose message never quotes the body;
:func:`chatauth.responses.error_answer` turns it into the JSON answer.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
from collections.abc import AsyncIterable, Callable
from email.message import Message
from typing import Any

from chatauth.errors import RequestBodyError, RequestTooLargeError, UnsupportedMediaTypeError

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH",
    "ARequestBody",
    "RequestBody",
    "aread_json_object",
    "check_headers",
    "parse_json_object",
    "read_json_object",
]

#: The largest body chatauth's endpoints accept, in bytes. Their bodies are a few hundred
#: bytes (a username and a signed token); 64 KiB leaves room without inviting uploads.
MAX_BODY_BYTES = 64 * 1024
#: The deepest nesting of arrays and objects accepted; chatauth's bodies nest two levels.
MAX_JSON_DEPTH = 32
# How much one blocking read asks for at a time.
_CHUNK = 16 * 1024

# A JSON string, up to its closing quote or the end of the data: brackets inside one are text,
# not nesting. Every opened string matches (unterminated ones run to the end), so the scan never
# backtracks and stays linear; a pattern requiring the closing quote took 12 s on 64 KiB of
# '"\\' repeated.
_STRING = re.compile(rb'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN = frozenset(b"[{")


@dataclasses.dataclass(frozen=True)
class RequestBody:
    """A request body to read with blocking calls (WSGI, Django).

    Attributes:
        content_type: the ``Content-Type`` header as received, or ``None``.
        content_length: the ``Content-Length`` header as received, or ``None`` (chunked).
        read: ``read(n) -> bytes``, at most ``n`` bytes, ``b""`` at the end (a file's read).
    """

    content_type: str | None
    content_length: str | None
    read: Callable[[int], bytes]

    @classmethod
    def of(cls, data: bytes, content_type: str | None = "application/json") -> RequestBody:
        """A body already in memory (tests, callers that hold bytes), with its true length."""
        return cls(content_type, str(len(data)), io.BytesIO(data).read)


@dataclasses.dataclass(frozen=True)
class ARequestBody:
    """A request body that arrives as an async stream of chunks (ASGI, Starlette).

    Attributes:
        content_type: the ``Content-Type`` header as received, or ``None``.
        content_length: the ``Content-Length`` header as received, or ``None`` (chunked).
        chunks: the body's chunks in order (Starlette's ``request.stream()``); not consumed
            past the cap.
    """

    content_type: str | None
    content_length: str | None
    chunks: AsyncIterable[bytes]


def check_headers(content_type: str | None, content_length: str | None, limit: int) -> None:
    """Refuse a body by its headers alone: a declared length over ``limit``, or not JSON.

    Args:
        content_type: the ``Content-Type`` header value, or ``None``.
        content_length: the ``Content-Length`` header value, or ``None``.
        limit: the largest accepted body, in bytes.

    Raises:
        RequestTooLargeError: ``Content-Length`` above ``limit`` (413).
        RequestBodyError: ``Content-Length`` is not a decimal number (400).
        UnsupportedMediaTypeError: the media type is not ``application/json`` or
            ``application/*+json``, or a ``charset`` other than UTF-8 is declared (415).
    """
    if content_length is not None:
        declared = content_length.strip()
        if not declared.isascii() or not declared.isdigit():
            raise RequestBodyError("The Content-Length header is not a number.")
        # Compare as text first: a thousand-digit length must not become a huge int.
        if len(declared.lstrip("0")) > len(str(limit)) or int(declared) > limit:
            raise RequestTooLargeError(limit)
    if content_type is None:
        raise UnsupportedMediaTypeError()
    # The stdlib's MIME header parser (RFC 2045 parameters, quoting, case).
    header = Message()
    header["Content-Type"] = content_type
    media = header.get_content_type()
    charset = header.get_content_charset()
    json_type = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if not json_type or charset not in (None, "utf-8", "utf8"):
        raise UnsupportedMediaTypeError()


def _chunks_so_far(total: int, limit: int) -> None:
    if total > limit:
        raise RequestTooLargeError(limit)


def read_json_object(
    body: RequestBody, *, limit: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """Read and parse a JSON object body within the bounds (see the module docstring).

    Args:
        body: the headers and the blocking reader.
        limit: the largest accepted body, in bytes.
        max_depth: the deepest accepted nesting of arrays and objects.

    Returns:
        The decoded object.

    Raises:
        RequestTooLargeError: over ``limit`` bytes, declared or read (413).
        UnsupportedMediaTypeError: not declared as UTF-8 JSON (415).
        RequestBodyError: not a JSON object within ``max_depth`` (400).
    """
    check_headers(body.content_type, body.content_length, limit)
    parts: list[bytes] = []
    total = 0
    while True:
        chunk = body.read(min(_CHUNK, limit + 1 - total))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
        _chunks_so_far(total, limit)
    return parse_json_object(b"".join(parts), max_depth=max_depth)


async def aread_json_object(
    body: ARequestBody, *, limit: int = MAX_BODY_BYTES, max_depth: int = MAX_JSON_DEPTH
) -> dict[str, Any]:
    """Async twin of :func:`read_json_object`: the chunk stream is left as soon as more than
    ``limit`` bytes have arrived."""
    check_headers(body.content_type, body.content_length, limit)
    parts: list[bytes] = []
    total = 0
    async for chunk in body.chunks:
        parts.append(chunk)
        total += len(chunk)
        _chunks_so_far(total, limit)
    return parse_json_object(b"".join(parts), max_depth=max_depth)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _too_deep(data: bytes, max_depth: int) -> bool:
    """Whether ``[``/``{`` outside JSON strings nest deeper than ``max_depth``."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in _OPEN:
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def parse_json_object(data: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """Parse ``data`` as a UTF-8 JSON object no deeper than ``max_depth``.

    Args:
        data: the whole body (already bounded by the caller).
        max_depth: the deepest accepted nesting of arrays and objects.

    Returns:
        The decoded object; its strings are all encodable as UTF-8.

    Raises:
        RequestBodyError: ``ERROR_INVALID_JSON``, ``ERROR_JSON_TOO_DEEP`` or
            ``ERROR_BAD_REQUEST`` (valid JSON, not an object) (400).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestBodyError("The body is not UTF-8.", code="ERROR_INVALID_JSON") from None
    if _too_deep(data, max_depth):
        raise RequestBodyError(
            f"The body nests deeper than {max_depth} levels.", code="ERROR_JSON_TOO_DEEP"
        )
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
        # A lone surrogate escape decodes to a str no codec can write back out.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except ValueError:  # JSONDecodeError, int digit limits, UnicodeEncodeError
        raise RequestBodyError("The body is not valid JSON.", code="ERROR_INVALID_JSON") from None
    if not isinstance(payload, dict):
        raise RequestBodyError("Expected a JSON object.")
    return payload
