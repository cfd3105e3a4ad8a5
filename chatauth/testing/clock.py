"""A clock that tests set by hand: time moves when the test says so, nothing sleeps."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

__all__ = ["ManualClock"]


class ManualClock:
    """A :class:`chatauth.clock.Clock` that stands still until :meth:`advance` moves it.

    Args:
        start: the initial wall-clock time, Unix seconds; default the real time at
            construction, so tokens minted by providers (which read the real clock for the
            claims the vendor checks) stay consistent with it.

    ``monotonic()`` starts at 0 and moves with :meth:`advance` only. Thread-safe.
    """

    def __init__(self, start: float | None = None) -> None:
        self._wall = time.time() if start is None else float(start)
        self._mono = 0.0
        self._guard = threading.Lock()

    def time(self) -> float:
        with self._guard:
            return self._wall

    def monotonic(self) -> float:
        with self._guard:
            return self._mono

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), timezone.utc)

    def advance(self, seconds: float | timedelta) -> None:
        """Move both readings forward by ``seconds`` (float or ``timedelta``; not negative)."""
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError("a clock does not go back")
        with self._guard:
            self._wall += step
            self._mono += step

    def __call__(self) -> float:
        """Wall-clock seconds: lets the emulators' ``clock=`` share this clock."""
        return self.time()

    def __repr__(self) -> str:
        return f"ManualClock(time={self._wall:.3f})"
