"""The testing package as a whole: fixtures, independence from the core, no leaked keys."""

from __future__ import annotations

import ast
import pathlib

import pytest

import chatauth.testing
from chatauth.testing import (
    ChatCampEmulator,
    ChatKittyEmulator,
    CometChatEmulator,
    Emulator,
    SendbirdEmulator,
    StreamEmulator,
    TwilioEmulator,
)
from tests.testing import _loopback as loopback

PACKAGE = pathlib.Path(chatauth.testing.__file__).parent
FIXTURES = [
    "cometchat_emulator",
    "chatkitty_emulator",
    "chatcamp_emulator",
    "stream_emulator",
    "sendbird_emulator",
    "twilio_emulator",
]
PREFIXES = {
    CometChatEmulator: "/v3",
    ChatKittyEmulator: "",
    ChatCampEmulator: "/api/2.0",
    StreamEmulator: "",
    SendbirdEmulator: "/v3",
    TwilioEmulator: "/v1",
}


@pytest.mark.parametrize("name", FIXTURES)
def test_fixtures_yield_served_emulators(request: pytest.FixtureRequest, name: str) -> None:
    emulator = request.getfixturevalue(name)
    assert isinstance(emulator, Emulator)
    assert emulator.url.startswith("http://127.0.0.1:")
    assert emulator.base_url == emulator.url + PREFIXES[type(emulator)]
    # Something answers there, in HTTP.
    assert loopback.get(emulator.url + "/no/such/path").status_code == 404
    assert emulator.calls == [("GET", "/no/such/path")]


def test_two_fixtures_at_once_get_two_servers(
    cometchat_emulator: CometChatEmulator, stream_emulator: StreamEmulator
) -> None:
    assert cometchat_emulator.url != stream_emulator.url


def test_unserved_emulator_has_no_url() -> None:
    emulator = SendbirdEmulator()
    assert emulator.served_url is None
    with pytest.raises(RuntimeError, match="not being served"):
        _ = emulator.url
    with pytest.raises(RuntimeError, match="not being served"):
        _ = emulator.base_url


def test_emulators_import_nothing_from_the_core() -> None:
    # They are fakes of the clouds: sharing code with the providers would make tests of the
    # providers agree with themselves.
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}: relative import"
                names = [node.module or ""]
            for name in names:
                if name == "chatauth" or name.startswith("chatauth."):
                    assert name.startswith("chatauth.testing"), f"{path.name} imports {name}"


@pytest.mark.parametrize("cls", list(PREFIXES))
def test_reprs_hold_no_secrets(cls: type[Emulator]) -> None:
    emulator = cls()
    text = repr(emulator) + repr(emulator.faults)
    for value in vars(emulator).values():
        if isinstance(value, str) and ("secret" in value or "key" in value or "token" in value):
            assert value not in text
    assert text.startswith(f"<{cls.__name__} ")
