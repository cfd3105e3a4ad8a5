"""A hand-set clock for the emulators' ``clock=`` argument: tests move time, nothing sleeps."""

from __future__ import annotations

#: Where every test clock starts (Unix seconds, 2023-11-14 22:13:20 UTC).
T0 = 1_700_000_000.0


class Clock:
    """A callable returning ``now`` (Unix seconds, starting at :data:`T0`); tests set it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now
