"""A JWT provider that records every issue in a file: how the tests count provider calls made
by several OS processes (a shared file is the one counter they all see)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.jwt import JWTProvider
from chatauth.tokens import ChatToken


class CountingJWTProvider(JWTProvider):
    """``JWTProvider`` + settings ``COUNT_FILE`` (one line appended per issue) and
    ``ISSUE_DELAY`` (seconds to hold the issue, so racing processes overlap)."""

    settings_keys = JWTProvider.settings_keys | {"count_file", "issue_delay"}

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CountingJWTProvider:
        base = JWTProvider.from_settings(settings)
        provider = cls(base.signer)
        provider.count_file = str(settings["count_file"])
        provider.issue_delay = float(settings.get("issue_delay", 0))
        return provider

    count_file: str = ""
    issue_delay: float = 0.0

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        with open(self.count_file, "a") as counter:
            counter.write(f"{os.getpid()} {identity.uid}\n")
        time.sleep(self.issue_delay)
        return super().issue(identity, ttl)


def issued(count_file: str) -> list[str]:
    """The lines written so far (one per issue)."""
    try:
        with open(count_file) as counter:
            return counter.read().splitlines()
    except FileNotFoundError:
        return []
