"""``chatauth.js``, the front end's glue to the chat SDKs' refresh hooks, as an HTTP answer.

Every adapter serves it at ``GET <prefix>/chatauth.js`` with :func:`script_answer`; the file
ships in the package (``chatauth/static/chatauth.js``) and its API is documented at its top.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources

__all__ = ["SCRIPT_NAME", "ScriptAnswer", "script_answer", "script_source"]

#: The path of the script under the chat prefix.
SCRIPT_NAME = "chatauth.js"

#: ``(status, body bytes, headers)``.
ScriptAnswer = tuple[int, bytes, dict[str, str]]

# Cacheable by browsers and proxies (no user data in it); an hour, then revalidated by ETag,
# so an upgraded chatauth reaches browsers within the hour.
_CACHE_CONTROL = "public, max-age=3600"


@functools.cache
def script_source() -> bytes:
    """The bytes of ``chatauth.js`` as shipped in the package."""
    return (
        importlib.resources.files("chatauth").joinpath("static").joinpath(SCRIPT_NAME).read_bytes()
    )


@functools.cache
def _etag() -> str:
    return '"' + hashlib.sha256(script_source()).hexdigest()[:32] + '"'


def script_answer(if_none_match: str | None = None) -> ScriptAnswer:
    """The answer to ``GET <prefix>/chatauth.js``.

    Args:
        if_none_match: the request's ``If-None-Match`` header, if any.

    Returns:
        200 with the script, ``Content-Type: text/javascript; charset=utf-8`` (the type
        RFC 9239 registers for JavaScript, required for an ES module), ``Cache-Control:
        public, max-age=3600``, an ``ETag`` and ``X-Content-Type-Options: nosniff``; or 304
        with no body when ``if_none_match`` names the current ``ETag`` (or is ``*``).
    """
    etag = _etag()
    headers = {"Cache-Control": _CACHE_CONTROL, "ETag": etag}
    if if_none_match is not None:
        tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
        if etag in tags or "*" in tags:
            return 304, b"", headers
    return (
        200,
        script_source(),
        {
            **headers,
            "Content-Type": "text/javascript; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
        },
    )
