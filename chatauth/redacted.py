"""A string whose ``repr`` hides it: for secrets that live in a frame's local variables.

Error pages that list local variables (Django's DEBUG technical 500 page, Werkzeug's debugger,
Sentry's frame variables) show ``repr(value)``. A bearer token, an API key or a signing key
held in a local as a :class:`Redacted` shows as ``'<redacted>'`` there, while ``str()``,
f-strings, ``.encode()`` and comparisons see the real value.
"""

from __future__ import annotations

__all__ = ["Redacted"]


class Redacted(str):
    """A ``str`` that is ``'<redacted>'`` in ``repr`` (and so in pprint, logs of containers,
    error pages); its value is unchanged everywhere else."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"
