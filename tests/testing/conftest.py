"""The emulator fixtures, until the testing extra registers its pytest11 entry point."""

from __future__ import annotations

from chatauth.testing.pytest_plugin import (  # noqa: F401 - fixtures, used by name
    chatauth_emulator_hosts,
    chatcamp_emulator,
    chatkitty_emulator,
    cometchat_emulator,
    sendbird_emulator,
    serve_emulator,
    stream_emulator,
    twilio_emulator,
)
