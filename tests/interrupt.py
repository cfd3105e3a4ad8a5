"""A SIGTERM ends a test run the way Ctrl-C does: the fixtures' ``finally`` blocks run, so the
servers they started (Synapse, Redis, PostgreSQL, uvicorn, Chromium) are stopped by PID
instead of being left running. Python's own SIGTERM handling ends the process at once, and a
CI timeout or a ``kill`` sends SIGTERM."""

from __future__ import annotations

import signal
from types import FrameType

import pytest


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # nobody else handles it
        signal.signal(signal.SIGTERM, _interrupt)
