"""Small local providers for service tests: real JWT minting plus counters.

They stand in for no third party: they make the service's own decisions observable (how
many issue calls, which tokens were revoked), so tests can assert single-flight and the
revocation rules. :class:`GatedProvider` with a :class:`Gate` holds callers inside the
provider call until the test lets them go, so race tests can watch the race happen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from datetime import timedelta
from typing import ClassVar

import httpx

from chatauth.clock import Clock
from chatauth.http import Flow
from chatauth.identity import ChatIdentity
from chatauth.providers.base import Revocation, no_requests
from chatauth.providers.jwt import JWTProvider, JWTSigner
from chatauth.tokens import ChatToken


class CountingProvider(JWTProvider):
    """Mints JWTs, counts issue calls, records revocations; optionally appends one line per
    issue to ``count_file`` (to count across processes).

    With a ``clock``, tokens are dated by it (``issued_at`` its now, ``expires_at`` now plus
    the ttl) instead of the real time, as a provider sharing the test's clock would date
    them; the JWT's own claims keep the real time, which the service never reads.
    """

    revocation: ClassVar[Revocation] = "none"

    def __init__(self, *, count_file: str | None = None, clock: Clock | None = None) -> None:
        super().__init__(JWTSigner("HS256", secret="counting-secret-0123456789abcdef"))
        self.count_file = count_file
        self.clock = clock
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
        flow = super().issue(identity, ttl)
        return flow if self.clock is None else self._dated(flow, self.clock, ttl)

    @staticmethod
    def _dated(flow: Flow[ChatToken], clock: Clock, ttl: timedelta) -> Flow[ChatToken]:
        token = yield from flow
        now = clock.now()
        return dataclasses.replace(token, issued_at=now, expires_at=now + ttl)

    def revoke(self, token: ChatToken) -> Flow[None]:
        self.revoked.append(token)
        return no_requests(None)


class TokenRevokingProvider(CountingProvider):
    revocation: ClassVar[Revocation] = "token"


class UserRevokingProvider(CountingProvider):
    revocation: ClassVar[Revocation] = "user"


#: Seconds a gated request waits for the test to open the gate before failing the test.
GATE_TIMEOUT = 30.0


class Gate:
    """The provider endpoint of :class:`GatedProvider`, closed until the test opens it.

    :meth:`transport` answers sync requests (threads), :meth:`async_transport` async ones
    (tasks of one event loop). Each request sets :attr:`entered` and then waits for
    :meth:`open`; a gate left closed for :data:`GATE_TIMEOUT` seconds fails the request
    with an ``AssertionError`` instead of hanging the suite.
    """

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._opened = threading.Event()
        self._aentered: asyncio.Event | None = None
        self._aopened: asyncio.Event | None = None
        self._count_guard = threading.Lock()
        self.requests = 0

    def open(self) -> None:
        """Let every held request (and every later one) through."""
        self._opened.set()
        if self._aopened is not None:
            self._aopened.set()

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            with self._count_guard:
                self.requests += 1
            self.entered.set()
            assert self._opened.wait(GATE_TIMEOUT), "the test never opened the gate"
            return httpx.Response(204)

        return httpx.MockTransport(handle)

    def async_transport(self) -> httpx.MockTransport:
        """Build it inside the event loop the requests will run on (several transports of
        one gate share its events)."""
        if self._aentered is None or self._aopened is None:
            self._aentered, self._aopened = asyncio.Event(), asyncio.Event()
            if self._opened.is_set():
                self._aopened.set()
        aentered, aopened = self._aentered, self._aopened

        async def handle(request: httpx.Request) -> httpx.Response:
            self.requests += 1
            aentered.set()
            await asyncio.wait_for(aopened.wait(), GATE_TIMEOUT)
            return httpx.Response(204)

        return httpx.MockTransport(handle)

    async def aentered(self) -> None:
        """Return once an async request is inside the gate."""
        assert self._aentered is not None, "build async_transport() first"
        await asyncio.wait_for(self._aentered.wait(), GATE_TIMEOUT)


class GatedProvider(CountingProvider):
    """A :class:`CountingProvider` whose issue flow first calls the provider endpoint of a
    :class:`Gate` (``POST https://provider.test/issue``): the issuing caller stays inside the
    provider call, holding the service's locks, until the test opens the gate."""

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        return self._through_gate(super().issue(identity, ttl))

    @staticmethod
    def _through_gate(flow: Flow[ChatToken]) -> Flow[ChatToken]:
        yield httpx.Request("POST", "https://provider.test/issue")
        return (yield from flow)
