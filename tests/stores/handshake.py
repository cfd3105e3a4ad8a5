"""Making a cross-process race happen for sure, and proving afterwards that it did.

Processes leave markers in a shared folder: ``<event>-<pid>`` files holding the moment they
were written. A store mixed with :class:`ReportsLock` writes ``locked-<pid>`` the first time
its process takes an issue lock and ``waiting-<pid>`` the first time it finds one taken. A
provider inside the lock calls :func:`hold_until_seen` (``enter-<pid>``, wait until the
others wrote ``waiting``, ``exit-<pid>``), so the others are sure to find the lock taken, with
no guessed delay. :func:`assert_race_happened` then checks the markers' times.

Times are ``time.monotonic()``: on Linux CLOCK_MONOTONIC, one clock for every process of the
machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["HANDSHAKE_TIMEOUT", "ReportsLock", "assert_race_happened", "hold_until_seen", "mark"]

#: Seconds the process inside the lock waits for the others to report the lock taken.
HANDSHAKE_TIMEOUT = 60.0


def mark(folder: str | Path, name: str) -> None:
    """Create ``folder/name`` holding this moment; written then renamed, so a reader never
    sees it half written."""
    part = Path(folder) / f".{name}.part"
    part.write_text(repr(time.monotonic()))
    os.replace(part, Path(folder) / name)


def marks(folder: str | Path, event: str) -> dict[int, float]:
    """The ``<event>-<pid>`` markers in ``folder``: pid to the moment it was written."""
    return {
        int(path.name.rpartition("-")[2]): float(path.read_text())
        for path in Path(folder).glob(f"{event}-*")
    }


def hold_until_seen(folder: str | Path, waiters: int) -> None:
    """Inside the issue lock: wait until ``waiters`` other processes found the lock taken.

    Raises:
        TimeoutError: they did not within :data:`HANDSHAKE_TIMEOUT` seconds (no race).
    """
    mark(folder, f"enter-{os.getpid()}")
    deadline = time.monotonic() + HANDSHAKE_TIMEOUT
    # Polls a condition (the others' reports) with a deadline: no guessed duration.
    while len(marks(folder, "waiting")) < waiters:
        if time.monotonic() > deadline:
            raise TimeoutError("the other processes never found the issue lock taken")
        time.sleep(0.01)
    mark(folder, f"exit-{os.getpid()}")


class ReportsLock:
    """Mixed in before a store class: reports this process's first lock taken and first lock
    found taken (``handshake_dir`` must be set). The store's behaviour is unchanged."""

    handshake_dir: str = ""
    _reported: frozenset[str] = frozenset()

    def _try_lock(self, key: Any, owner: str, ttl: float) -> bool:
        taken: bool = super()._try_lock(key, owner, ttl)  # type: ignore[misc]
        event = "locked" if taken else "waiting"
        if event not in self._reported:
            self._reported = self._reported | {event}
            mark(self.handshake_dir, f"{event}-{os.getpid()}")
        return taken


def assert_race_happened(folder: str | Path, processes: int) -> int:
    """Check that one process issued and every other one found its lock taken while it held
    the lock and before it left the provider call; returns the issuer's pid."""
    [(issuer, entered)] = marks(folder, "enter").items()
    locked, left = marks(folder, "locked")[issuer], marks(folder, "exit")[issuer]
    waiting = marks(folder, "waiting")
    assert issuer not in waiting
    assert len(waiting) == processes - 1, waiting
    assert locked <= entered <= left
    assert all(locked <= seen <= left for seen in waiting.values()), (locked, waiting, left)
    return issuer
