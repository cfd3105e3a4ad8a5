"""Provider emulators for testing chatauth, and anything built on it, without the real clouds.

Install with the ``testing`` extra: ``pip install "chatauth-middleware[testing]"`` (it brings
Starlette and uvicorn). Each emulator is an in-memory fake of one chat provider's server API,
built as a Starlette app and served over real HTTP on ``127.0.0.1``, implementing the documented
endpoints, headers, JSON shapes, status codes and error codes (see each module's docstring for
the reference it follows and the choices made where the docs are silent). The emulators import
nothing from chatauth outside this package, so tests of chatauth's providers against them are
honest.

Every emulator has ``app`` (the ASGI app), ``faults`` (latency, timeouts, error statuses and
connection resets for the next requests), ``calls`` (the requests it received), ``serve()``
(a context manager setting ``url`` and ``base_url``) and state inspection helpers::

    from chatauth.testing import CometChatEmulator

    emulator = CometChatEmulator()
    with emulator.serve():
        ...  # point the provider's base_url at emulator.base_url
        emulator.faults.status(429, retry_after=1)
        assert emulator.calls.count(("POST", "/v3/users")) == 1

Pytest fixtures serving each emulator are in :mod:`chatauth.testing.pytest_plugin`.
"""

from __future__ import annotations

from chatauth.testing.chatcamp import ChatCampEmulator
from chatauth.testing.chatkitty import ChatKittyEmulator, SessionAttempt
from chatauth.testing.cometchat import CometChatEmulator
from chatauth.testing.faults import Call, CallLog, EmulatorApp, FaultInjectionMiddleware, Faults
from chatauth.testing.sendbird import SendbirdEmulator
from chatauth.testing.server import Emulator, ServedApp, serve
from chatauth.testing.stream import StreamEmulator
from chatauth.testing.twilio import AccessTokenError, TwilioEmulator

__all__ = [
    "AccessTokenError",
    "Call",
    "CallLog",
    "ChatCampEmulator",
    "ChatKittyEmulator",
    "CometChatEmulator",
    "Emulator",
    "EmulatorApp",
    "FaultInjectionMiddleware",
    "Faults",
    "SendbirdEmulator",
    "ServedApp",
    "SessionAttempt",
    "StreamEmulator",
    "TwilioEmulator",
    "serve",
]
