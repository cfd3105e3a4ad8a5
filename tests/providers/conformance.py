"""What the conformance suite needs to know about one provider under test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx

from chatauth.providers.base import BaseProvider
from chatauth.testing.faults import Faults
from chatauth.tokens import ChatToken
from tests.servers.deadlines import REQUEST_DEADLINE

#: Per HTTP phase, for every request the suite expects a server to answer.
ANSWER_DEADLINE = REQUEST_DEADLINE
#: The service's timeout when the test is that a silent server times out: ``faults.timeout()``
#: keeps the server silent for 30 s (``DEFAULT_HANG_SECONDS``), so this fires every time; it is
#: short only so the test is quick. Applies to faulted requests only (:class:`AnswerDeadlines`).
HANG_TIMEOUT = 0.5


@dataclasses.dataclass
class Harness:
    """A provider wired to a real server or an emulator over loopback HTTP.

    Attributes:
        name: the provider name (also the harness module's name).
        provider: the provider configured against the server.
        make_bad_provider: builds the provider with a wrong secret; it either raises
            ``ConfigurationError`` itself or returns a provider whose ``issue`` is refused
            with ``ProviderError``.
        is_alive: asks the server, as the front-end SDK would, whether a token still works.
        faults: the emulator's fault queue (``chatauth.testing.faults.Faults``), or ``None``
            for a provider that makes no HTTP call.
        issue_calls: how many token-issuing calls the server has seen so far.
        valid_uid: a UID the provider accepts, used by the suite.
        attach: called with each ``ChatAuth`` the suite builds on ``provider`` (ChatKitty's
            verify URL answers from that service's store).
        one_token_per_user: the provider keeps one live token per user (ChatCamp), so a
            second app session's token replaces the first one's at the provider.
        connect: what the front-end SDK's first connection does at the server, for a
            provider that creates the chat user only then (Twilio): ``(uid, name)``.
        chat_user: the chat user as the server keeps it, asked of the server itself:
            ``{"name", "active"}`` plus ``"avatar"`` where the provider keeps one, or ``None``
            when the server keeps no profile of that UID (never created, deleted, erased).
    """

    name: str
    provider: BaseProvider
    make_bad_provider: Callable[[], BaseProvider]
    is_alive: Callable[[ChatToken], bool]
    faults: Any | None
    issue_calls: Callable[[], int]
    valid_uid: str = "user-conformance-1"
    one_token_per_user: bool = False
    attach: Callable[[Any], None] | None = None
    chat_user: Callable[[str], dict[str, Any] | None] = lambda uid: None
    connect: Callable[[str, str], None] = lambda uid, name: None


class AnswerDeadlines(httpx.BaseTransport):
    """The suite's HTTP transport: every request a server is expected to answer gets the
    generous ``ANSWER_DEADLINE`` for each phase, whatever timeout the service was built with.

    Only the read phase of a request sent while a fault is queued keeps the service's own
    timeout. The suite builds a service with a short timeout only to test ``faults.timeout()``,
    whose server stays silent for far longer, so that timeout firing is certain and quick,
    while the retry after it, or the next request after the outage, reaching the real server
    (Synapse behind its proxy, or an emulator) on a loaded machine, is not raced by that clock.
    """

    def __init__(self, faults: Faults | None) -> None:
        self.faults = faults
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        configured: dict[str, float | None] = dict(request.extensions.get("timeout", {}))
        timeouts = {phase: ANSWER_DEADLINE for phase in ("connect", "read", "write", "pool")}
        if self.faults is not None and self.faults.pending:
            timeouts["read"] = configured.get("read") or ANSWER_DEADLINE
        request.extensions["timeout"] = timeouts
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()
