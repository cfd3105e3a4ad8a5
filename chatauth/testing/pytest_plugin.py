"""Pytest fixtures serving each provider emulator over real HTTP, one server per test.

Each fixture yields the emulator itself while it is served: ``.url`` is the server root
(``http://127.0.0.1:<port>``), ``.base_url`` the replacement for the provider's documented
base URL, plus ``.faults``, ``.calls`` and the emulator's inspection helpers::

    def test_issue(cometchat_emulator):
        provider = CometChatProvider(..., base_url=cometchat_emulator.base_url)
        ...
        assert cometchat_emulator.calls.count(("POST", "/v3/users/alice/auth_tokens")) == 1

``serve_emulator`` serves an emulator you configured yourself (other keys, a fake clock).
The emulators are fresh for every test, but the servers under them are not restarted: a
session-scoped pool (``chatauth_emulator_hosts``) keeps them running, which saves ~0.2 s of
uvicorn start/stop per test.
Enable with ``-p chatauth.testing.pytest_plugin`` or, once registered, the ``pytest11`` entry
point of the ``testing`` extra.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest

import chatauth.testing
from chatauth.testing.server import Emulator, HostPool

_E = TypeVar("_E", bound=Emulator)


@pytest.fixture(scope="session")
def chatauth_emulator_hosts() -> Iterator[HostPool]:
    """The servers the emulator fixtures mount their (per-test) emulators on."""
    with HostPool() as pool:
        yield pool


@pytest.fixture
def serve_emulator(chatauth_emulator_hosts: HostPool) -> Iterator[Callable[[_E], _E]]:
    """A function serving a given emulator until the end of the test; returns it (served)."""
    with ExitStack() as stack:

        def start(emulator: _E) -> _E:
            return stack.enter_context(chatauth_emulator_hosts.serve(emulator))

        yield start


def _emulator_fixture(name: str, emulator_class: type[_E]) -> Any:
    """A fixture ``name`` yielding a served ``emulator_class()`` with default keys."""

    def serve_fresh(chatauth_emulator_hosts: HostPool) -> Iterator[_E]:
        with chatauth_emulator_hosts.serve(emulator_class()) as emulator:
            yield emulator

    serve_fresh.__name__ = serve_fresh.__qualname__ = name
    serve_fresh.__doc__ = (
        f"A served :class:`~{emulator_class.__module__}.{emulator_class.__name__}` "
        "with default keys."
    )
    return pytest.fixture(name=name)(serve_fresh)


def _emulators() -> dict[str, type[Emulator]]:
    """``<module>_emulator`` -> the emulator class each module of :mod:`chatauth.testing`
    defines: an emulator's module is all it takes to get its fixture."""
    found: dict[str, type[Emulator]] = {}
    for info in pkgutil.iter_modules(chatauth.testing.__path__):
        module = importlib.import_module(f"{chatauth.testing.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Emulator)
                and value is not Emulator
                and value.__module__ == module.__name__
            ):
                found[f"{info.name}_emulator"] = value
    return dict(sorted(found.items()))


_EMULATORS = _emulators()
# Pytest collects fixtures from this module's globals: one per emulator module
# (cometchat_emulator, chatkitty_emulator, chatcamp_emulator, stream_emulator,
# sendbird_emulator, twilio_emulator, ...).
for _name, _cls in _EMULATORS.items():
    globals()[_name] = _emulator_fixture(_name, _cls)

__all__ = ["chatauth_emulator_hosts", "serve_emulator", *_EMULATORS]
