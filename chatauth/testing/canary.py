"""Canary values: fake secrets and tokens that a scan of logs and output can recognise.

The emulators' default credentials are canaries (:func:`secret`), and the tokens they mint
carry :data:`TOKEN_MARK`, so a test suite can look for them anywhere they must not be -- log
records, error bodies, reprs, command output -- with one substring search instead of a list of
values. chatauth's own suite does so for every test (``tests/canary.py``); :func:`find` is the
scan, usable in your own tests too::

    from chatauth.testing import canary

    assert canary.find(caplog.text) == []

A canary is obviously fake and never a credential anywhere; it only has to be unmistakable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import NamedTuple

__all__ = ["PREFIX", "TOKEN_MARK", "Hit", "find", "name_of", "scan", "secret", "token"]

#: Every canary secret starts with this.
PREFIX = "chatauth-canary-"
#: Every token an emulator mints contains this (letters only: valid in any token alphabet).
TOKEN_MARK = "canarytoken"

# The secrets made in this process, by value, for naming a hit without printing it.
_NAMES: dict[str, str] = {}

# What a leak looks like: a canary secret, an emulator-minted token, a JWT (a locally signed
# chat token: Stream, Twilio, the JWT providers, Matrix JWT login), a Synapse access token.
_LEAK = re.compile(
    r"(?P<secret>" + re.escape(PREFIX) + r"[A-Za-z0-9_-]+)"
    r"|(?P<token>" + TOKEN_MARK + r"[A-Za-z0-9_-]*)"
    r"|(?P<jwt>eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{8,})"
    r"|(?P<matrix>syt_[A-Za-z0-9]+_[A-Za-z0-9]+_[A-Za-z0-9]+)"
)
# Cheap substring checks that rule most texts out before the regular expression runs.
_HINTS = (PREFIX, TOKEN_MARK, "eyJ", "syt_")
_KINDS = {
    "token": "a token minted by an emulator",
    "jwt": "a signed JWT (a chat token)",
    "matrix": "a Matrix access token",
}


def secret(name: str, *, random: bool = False) -> str:
    """A canary secret: ``PREFIX + name + "-" + 48 hex digits``.

    Args:
        name: what it stands for, e.g. ``"stream-api-secret"`` (letters, digits, ``-``);
            :func:`find` reports hits by this name.
        random: a fresh value per call (a server's per-run secret) instead of the same value
            in every process (the emulators' defaults).

    Returns:
        At least 66 characters: longer than every HMAC algorithm's minimum key (64 bytes for HS512).
    """
    tail = secrets.token_hex(24) if random else hashlib.sha256(name.encode()).hexdigest()[:48]
    value = f"{PREFIX}{name}-{tail}"
    _NAMES[value] = name
    return value


def token(random_part: str) -> str:
    """A token value an emulator hands out: ``TOKEN_MARK`` followed by ``random_part``
    (emulators cut the result to the provider's usual length, which the mark's 11 letters
    leave well above a hundred random bits)."""
    return TOKEN_MARK + random_part


def name_of(value: str) -> str:
    """Words for a leaked value that do not repeat it: the canary's name, or its kind."""
    if value.startswith(PREFIX):
        # The match may run on into the text around it: look the canary up by prefix.
        names = [name for known, name in _NAMES.items() if value.startswith(known)]
        return f"the canary secret {names[0]!r}" if names else "a canary secret made elsewhere"
    match = _LEAK.fullmatch(value)
    kind = match.lastgroup if match else None
    return _KINDS.get(kind or "", "a secret-like value")


class Hit(NamedTuple):
    """One canary found in a text.

    Attributes:
        kind: ``"secret"``, ``"token"`` (emulator-minted), ``"jwt"`` or ``"matrix"``.
        description: :func:`name_of` the value: never the value itself.
    """

    kind: str
    description: str


def scan(text: str, *, tokens: bool = True) -> list[Hit]:
    """Every canary in ``text``, in order; empty when ``text`` is clean.

    Args:
        text: any output.
        tokens: also look for issued tokens (``False`` where a token may rightly appear,
            such as a provider's own answers, leaving only the secrets).
    """
    if not any(hint in text for hint in _HINTS):
        return []
    hits = []
    for match in _LEAK.finditer(text):
        kind = match.lastgroup or "secret"
        if kind == "secret" or tokens:
            hits.append(Hit(kind, name_of(match.group())))
    return hits


def find(text: str, *, tokens: bool = True) -> list[str]:
    """The descriptions of :func:`scan`'s hits (never the values): ``[]`` means clean."""
    return [hit.description for hit in scan(text, tokens=tokens)]
