"""Provider backends, one module each, and the registry of their short names.

The registry is the only list of providers: it is found, not written. Every module of this
package is imported on first use of :func:`registry`, and each :class:`BaseProvider` subclass
defined there with a ``name`` of its own is registered under that name. Adding a provider is
adding its module (and its emulator, harness and tests); nothing else names it.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from chatauth.errors import ConfigurationError
from chatauth.identity import import_string
from chatauth.providers.base import BaseProvider, Provider

__all__ = ["PROVIDERS", "BaseProvider", "Provider", "provider_class", "registry"]


@functools.cache
def registry() -> dict[str, type[BaseProvider]]:
    """Short name (the ``PROVIDER`` setting, ``"matrix"``) -> provider class, in name order.

    Raises:
        RuntimeError: two provider classes claim one name.
    """
    found: dict[str, type[BaseProvider]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if not (
                isinstance(value, type)
                and issubclass(value, BaseProvider)
                and value is not BaseProvider
                and value.__module__ == module.__name__
                and "name" in value.__dict__
            ):
                continue
            if found.setdefault(value.name, value) is not value:
                raise RuntimeError(f"Two provider classes are named {value.name!r}.")
    return dict(sorted(found.items()))


def __getattr__(name: str) -> Any:
    # PROVIDERS ("name" -> "module:Class") is computed on first access, not at import: the
    # registry imports every provider module.
    if name == "PROVIDERS":
        return {key: f"{cls.__module__}:{cls.__qualname__}" for key, cls in registry().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def provider_class(name: str) -> type[BaseProvider]:
    """The provider class for a short name (``"matrix"``) or a dotted path.

    Raises:
        ConfigurationError: unknown name or unimportable path.
    """
    known = registry()
    cls: Any = known.get(name.lower())
    if cls is not None:
        return cls  # type: ignore[no-any-return]
    if "." not in name and ":" not in name:
        # The value is not repeated: a secret pasted into the wrong variable must not be
        # printed by the error that catches the mistake.
        raise ConfigurationError(
            f"PROVIDER is not a known provider; choose one of {', '.join(known)} "
            "or give a dotted path to a provider class.",
            setting="PROVIDER",
        )
    try:
        cls = import_string(name)
    except ConfigurationError:
        raise ConfigurationError(
            "PROVIDER's dotted path cannot be imported.", setting="PROVIDER"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseProvider)):
        raise ConfigurationError(
            "PROVIDER's dotted path names something that is not a provider class.",
            setting="PROVIDER",
        )
    return cls
