"""A JWT provider that records every issue in a file and holds the issue open until the other
processes of a race have seen the issue lock taken.

How the race tests count provider calls made by several OS processes (a shared file is the one
counter they all see), and how they make the race happen for sure instead of hoping that a
delay is long enough: the process inside the lock waits for the others to report (see
:mod:`tests.stores.handshake`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.jwt import JWTProvider
from chatauth.tokens import ChatToken
from tests.stores.handshake import hold_until_seen


class CountingJWTProvider(JWTProvider):
    """``JWTProvider`` + settings ``COUNT_FILE`` (one line appended per issue) and
    ``HANDSHAKE_DIR`` / ``WAITERS``: an issue writes ``enter-<pid>``, waits until ``WAITERS``
    other processes have written ``waiting-<pid>`` (they found the issue lock taken), then
    writes ``exit-<pid>``. With ``WAITERS`` 0 (the default) it does not wait.

    Raises:
        TimeoutError: from ``issue``, when the others did not report within
            :data:`tests.stores.handshake.HANDSHAKE_TIMEOUT` seconds (no race happened).
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
            hold_until_seen(self.handshake_dir, self.waiters)
        return super().issue(identity, ttl)


def issued(count_file: str) -> list[str]:
    """The lines written so far (one per issue)."""
    try:
        with open(count_file) as counter:
            return counter.read().splitlines()
    except FileNotFoundError:
        return []
