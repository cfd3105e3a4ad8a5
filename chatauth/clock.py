"""Time, injected: the service and the stores read the clock they are given.

Everything in chatauth that decides by time (is a stored token still usable, has an issue
lock expired, when was a revocation queued, how long has a waiter waited) asks a
:class:`Clock` instead of the :mod:`time` module, so tests move time instead of sleeping
(:class:`chatauth.testing.clock.ManualClock`). Production code uses :data:`SYSTEM_CLOCK`.

Two readings, as in the standard library: :meth:`Clock.time` is wall-clock Unix seconds, the
one to store and to compare across processes (a lock row's expiry, a token's expiry);
:meth:`Clock.monotonic` never goes back and is only compared within one process (how long a
waiter has waited).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """What chatauth asks of a clock."""

    def time(self) -> float:
        """Wall-clock time, Unix seconds (UTC), comparable across processes."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin that never goes back; compare within one process."""
        ...

    def now(self) -> datetime:
        """The wall-clock time as an aware UTC :class:`~datetime.datetime`."""
        ...


class SystemClock:
    """The real clock: :func:`time.time`, :func:`time.monotonic`, ``datetime.now(UTC)``."""

    __slots__ = ()

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock every service and store uses unless given another.
SYSTEM_CLOCK: Clock = SystemClock()
