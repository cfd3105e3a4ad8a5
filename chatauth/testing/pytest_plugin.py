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

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any, TypeVar

import pytest

from chatauth.testing.chatcamp import ChatCampEmulator
from chatauth.testing.chatkitty import ChatKittyEmulator
from chatauth.testing.cometchat import CometChatEmulator
from chatauth.testing.sendbird import SendbirdEmulator
from chatauth.testing.server import Emulator, HostPool
from chatauth.testing.stream import StreamEmulator
from chatauth.testing.twilio import TwilioEmulator

__all__ = [
    "chatauth_emulator_hosts",
    "chatcamp_emulator",
    "chatkitty_emulator",
    "cometchat_emulator",
    "sendbird_emulator",
    "serve_emulator",
    "stream_emulator",
    "twilio_emulator",
]

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


cometchat_emulator = _emulator_fixture("cometchat_emulator", CometChatEmulator)
chatkitty_emulator = _emulator_fixture("chatkitty_emulator", ChatKittyEmulator)
chatcamp_emulator = _emulator_fixture("chatcamp_emulator", ChatCampEmulator)
stream_emulator = _emulator_fixture("stream_emulator", StreamEmulator)
sendbird_emulator = _emulator_fixture("sendbird_emulator", SendbirdEmulator)
twilio_emulator = _emulator_fixture("twilio_emulator", TwilioEmulator)
