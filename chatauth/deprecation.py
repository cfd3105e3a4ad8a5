"""Old names that keep working with a :class:`DeprecationWarning` (one vocabulary across the
adapters: ``get_service``, ``end_chat_session``, ``chat_session_started``/``_ended``)."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["deprecated_aliases"]


def deprecated_aliases(module: str, aliases: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving old names.

    Args:
        module: the module's ``__name__`` (for the error on unknown names).
        aliases: ``{old name: (module holding the new one, new name)}``.

    Returns:
        ``__getattr__(name)``: the new object for an old name, after a ``DeprecationWarning``
        naming the replacement; ``AttributeError`` for any other name.
    """

    def __getattr__(name: str) -> Any:
        target = aliases.get(name)
        if target is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        where, new = target
        warnings.warn(
            f"{module}.{name} is deprecated; use {where}.{new}.", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(where), new)

    return __getattr__
