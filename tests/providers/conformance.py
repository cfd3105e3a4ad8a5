"""What the conformance suite needs to know about one provider under test."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from chatauth.providers.base import BaseProvider
from chatauth.tokens import ChatToken


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
