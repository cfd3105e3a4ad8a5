"""Small local providers for service tests: real JWT minting plus counters.

They stand in for no third party: they make the service's own decisions observable (how
many issue calls, which tokens were revoked), so tests can assert single-flight and the
revocation rules.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from typing import ClassVar

from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.base import Revocation, no_requests
from chatauth.providers.jwt import JWTProvider, JWTSigner
from chatauth.tokens import ChatToken


class CountingProvider(JWTProvider):
    """Mints JWTs, counts issue calls, records revocations; optionally slow and appending
    one line per issue to ``count_file`` (to count across processes)."""

    revocation: ClassVar[Revocation] = "none"

    def __init__(self, *, delay: float = 0.0, count_file: str | None = None) -> None:
        super().__init__(JWTSigner("HS256", secret="counting-secret-0123456789abcdef"))
        self.delay = delay
        self.count_file = count_file
        self.issued = 0
        self.revoked: list[ChatToken] = []
        self._mutex = threading.Lock()

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        with self._mutex:
            self.issued += 1
        if self.count_file:
            fd = os.open(self.count_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
        if self.delay:
            time.sleep(self.delay)  # the provider's network latency, widening the race
        return super().issue(identity, ttl)

    def revoke(self, token: ChatToken) -> Flow[None]:
        self.revoked.append(token)
        return no_requests(None)


class TokenRevokingProvider(CountingProvider):
    revocation: ClassVar[Revocation] = "token"


class UserRevokingProvider(CountingProvider):
    revocation: ClassVar[Revocation] = "user"
