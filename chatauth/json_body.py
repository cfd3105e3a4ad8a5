"""A JSON answer body that is encoded once, however many requests send it."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["JSONBody", "json_bytes"]


def _encode(body: Any) -> bytes:
    # Compact UTF-8, as Starlette's JSONResponse writes it; NaN is refused (not JSON).
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class JSONBody(dict[str, Any]):
    """A ``dict`` body that keeps its encoding: a chat session's token-endpoint body, served
    unchanged to every request of the session while its token is cached
    (:mod:`chatauth.hits`). Treat it as read-only; :meth:`encoded` is computed on first use.
    """

    __slots__ = ("_encoded",)

    def encoded(self) -> bytes:
        """The body as compact UTF-8 JSON bytes."""
        try:
            return self._encoded
        except AttributeError:
            self._encoded: bytes = _encode(self)
            return self._encoded


def json_bytes(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON (the bytes every adapter sends): a :class:`JSONBody`'s
    kept encoding, or ``body`` encoded now.

    Raises:
        TypeError, ValueError: ``body`` holds something JSON cannot carry.
    """
    if isinstance(body, JSONBody):
        return body.encoded()
    return _encode(body)
