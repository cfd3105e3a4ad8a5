"""Stream against its emulator; a token is alive if the emulator's ``connect_user`` (the
check Stream's edge makes when a client connects) accepts it."""

from __future__ import annotations

from typing import Any

import pytest

from chatauth.providers.stream import StreamProvider
from chatauth.testing.stream import DEFAULT_API_KEY, DEFAULT_API_SECRET, StreamEmulator
from chatauth.tokens import ChatToken
from tests.providers.conformance import Harness

MAKES_HTTP_CALLS = True


def offline(url: str) -> StreamProvider:
    """The provider wired to ``url`` with the emulator's credentials, for the properties that
    answer its requests themselves (tests/providers/test_hostile_answers.py)."""
    return StreamProvider(DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=url)


@pytest.fixture(name="harness_stream")
def harness_stream(stream_emulator: StreamEmulator) -> Harness:
    def is_alive(token: ChatToken) -> bool:
        ok, _code = stream_emulator.connect_user(token.value)
        return ok

    def chat_user(uid: str) -> dict[str, Any] | None:
        user = stream_emulator.users.get(uid)
        if user is None:
            return None
        active = uid not in stream_emulator.deactivated
        return {"name": user.get("name"), "avatar": user.get("image"), "active": active}

    return Harness(
        name="stream",
        provider=StreamProvider(
            DEFAULT_API_KEY, DEFAULT_API_SECRET, base_url=stream_emulator.base_url
        ),
        make_bad_provider=lambda: StreamProvider(
            DEFAULT_API_KEY, "wrong-secret-" + "x" * 32, base_url=stream_emulator.base_url
        ),
        is_alive=is_alive,
        faults=stream_emulator.faults,
        # The user upkeep (query, then POST or PATCH) is the only call of an issue.
        issue_calls=lambda: stream_emulator.calls.count_of(path="/users"),
        chat_user=chat_user,
    )
