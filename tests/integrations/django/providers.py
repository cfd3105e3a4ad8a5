"""A JWT provider that records every issue in a file and holds the issue open until the other
processes of a race have seen the issue lock taken.

How the race tests count provider calls made by several OS processes (a shared file is the one
counter they all see), and how they make the race happen for sure instead of hoping that a
delay is long enough: the process inside the lock waits for the others to report (see
:mod:`tests.integrations.django.race_worker`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.jwt import JWTProvider
from chatauth.tokens import ChatToken

#: Seconds the issuing process waits for the others to report the lock taken.
HANDSHAKE_TIMEOUT = 60.0


def mark(folder: str | Path, name: str) -> None:
    """Create ``folder/name`` holding this moment's ``time.monotonic()`` (CLOCK_MONOTONIC on
    Linux: one clock for every process of the machine). Written then renamed, so a reader
    never sees it half written."""
    part = Path(folder) / f".{name}.part"
    part.write_text(repr(time.monotonic()))
    os.replace(part, Path(folder) / name)


def marks(folder: str | Path, prefix: str) -> dict[int, float]:
    """The ``<prefix>-<pid>`` markers in ``folder``: pid to the moment it was written."""
    return {
        int(path.name.rpartition("-")[2]): float(path.read_text())
        for path in Path(folder).glob(f"{prefix}-*")
    }


class CountingJWTProvider(JWTProvider):
    """``JWTProvider`` + settings ``COUNT_FILE`` (one line appended per issue) and
    ``HANDSHAKE_DIR`` / ``WAITERS``: an issue writes ``enter-<pid>``, waits until ``WAITERS``
    other processes have written ``waiting-<pid>`` (they found the issue lock taken), then
    writes ``exit-<pid>``. With ``WAITERS`` 0 (the default) it does not wait.

    Raises:
        TimeoutError: from ``issue``, when the others did not report within
            :data:`HANDSHAKE_TIMEOUT` seconds (the race did not happen).
    """

    settings_keys = JWTProvider.settings_keys | {"count_file", "handshake_dir", "waiters"}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CountingJWTProvider:
        base = JWTProvider.from_settings(settings)
        provider = cls(base.signer)
        provider.count_file = str(settings["count_file"])
        provider.handshake_dir = str(settings.get("handshake_dir") or "")
        provider.waiters = int(settings.get("waiters") or 0)
        return provider

    count_file: str = ""
    handshake_dir: str = ""
    waiters: int = 0

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        with open(self.count_file, "a") as counter:
            counter.write(f"{os.getpid()} {identity.uid}\n")
        if self.waiters:
            self._hold_until_seen()
        return super().issue(identity, ttl)

    def _hold_until_seen(self) -> None:
        mark(self.handshake_dir, f"enter-{os.getpid()}")
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT
        # Polls a condition (the others' reports), with a deadline: no guessed duration.
        while len(marks(self.handshake_dir, "waiting")) < self.waiters:
            if time.monotonic() > deadline:
                raise TimeoutError("the other processes never found the issue lock taken")
            time.sleep(0.01)
        mark(self.handshake_dir, f"exit-{os.getpid()}")


def issued(count_file: str) -> list[str]:
    """The lines written so far (one per issue)."""
    try:
        with open(count_file) as counter:
            return counter.read().splitlines()
    except FileNotFoundError:
        return []
