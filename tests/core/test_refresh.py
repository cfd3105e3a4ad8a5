"""chatauth.refresh: replacing a rejected token once, however many ask, within a bound."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

import pytest

from chatauth import ChatAuth, ChatIdentity, SessionKey
from chatauth.errors import RefreshLimitError
from chatauth.http import Flow
from chatauth.providers.base import Revocation
from chatauth.refresh import (
    REFRESH_LIMIT,
    REFRESH_WINDOW,
    RefreshLimiter,
    arefresh_session,
    refresh_limiter,
    refresh_session,
)
from chatauth.stores.memory import MemoryStore
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken

from .providers import GATE_TIMEOUT, Gate, GatedProvider

ALICE = ChatIdentity("user-alice")


class HeldRevokingProvider(GatedProvider):
    """Revokes per token; its issue goes through the gate only once :attr:`hold` is set."""

    revocation: ClassVar[Revocation] = "token"
    hold = False

    def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
        if self.hold:
            return super().issue(identity, ttl)
        return super(GatedProvider, self).issue(identity, ttl)


class WatchedStore(MemoryStore):
    """A memory store that says when a caller found a key's issue lock taken."""

    def __init__(self) -> None:
        super().__init__()
        self.contended = threading.Event()

    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        taken = super()._try_lock(key, owner, ttl)
        if not taken:
            self.contended.set()
        return taken


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def chat(clock: ManualClock) -> Iterator[ChatAuth]:
    service = ChatAuth(HeldRevokingProvider(), MemoryStore(clock=clock), clock=clock)
    yield service
    service.close()


def test_two_refreshes_of_one_rejected_token_replace_it_once() -> None:
    gate = Gate()
    provider = HeldRevokingProvider()
    store = WatchedStore()
    chat = ChatAuth(provider, store, transport=gate.transport())
    first = chat.get_session(ALICE, "s").token
    provider.hold = True
    got: list[str] = []

    def refresh() -> None:
        got.append(refresh_session(chat, ALICE, "s", first.value).token.value)

    leader = threading.Thread(target=refresh)
    leader.start()
    assert gate.entered.wait(GATE_TIMEOUT)  # the leader replaced the token and is issuing
    follower = threading.Thread(target=refresh)
    follower.start()
    # The follower is waiting for the session's issue lock, which the leader holds while it
    # issues the successor: the race happened. It then finds the successor, not its token.
    assert store.contended.wait(GATE_TIMEOUT)
    assert got == []
    gate.open()
    leader.join(GATE_TIMEOUT)
    follower.join(GATE_TIMEOUT)
    assert len(got) == 2 and got[0] == got[1] != first.value
    assert provider.issued == 2  # the first token and one replacement
    assert [t.value for t in provider.revoked] == [first.value]
    chat.close()


def test_a_token_that_is_not_the_stored_one_replaces_nothing(chat: ChatAuth) -> None:
    current = chat.get_session(ALICE, "s").token.value
    other = chat.get_session(ALICE, "other").token.value
    for rejected in (other, current + "x", "é-not-ascii", current[:-1]):
        assert refresh_session(chat, ALICE, "s", rejected).token.value == current
    assert chat.provider.revoked == []  # type: ignore[attr-defined]


def test_the_limit_counts_replacements_per_session(chat: ChatAuth, clock: ManualClock) -> None:
    token = chat.get_session(ALICE, "s").token.value
    for _ in range(REFRESH_LIMIT):
        token = refresh_session(chat, ALICE, "s", token).token.value
    clock.advance(REFRESH_WINDOW / 2)
    with pytest.raises(RefreshLimitError) as refused:
        refresh_session(chat, ALICE, "s", token)
    assert refused.value.retry_after == REFRESH_WINDOW / 2
    assert refused.value.code == "ERROR_REFRESH_LIMITED"
    # Refused means kept: the token is still the session's.
    assert chat.get_session(ALICE, "s").token.value == token
    # Another app session of the same user has its own allowance.
    mine = chat.get_session(ALICE, "t").token.value
    assert refresh_session(chat, ALICE, "t", mine).token.value != mine
    clock.advance(REFRESH_WINDOW / 2)
    assert refresh_session(chat, ALICE, "s", token).token.value != token
    # The limit is the service's to change.
    refresh_limiter(chat).limit = REFRESH_LIMIT + 10
    token = chat.get_session(ALICE, "s").token.value
    assert refresh_session(chat, ALICE, "s", token).token.value != token


def test_the_limiter_forgets_idle_sessions(clock: ManualClock) -> None:
    limiter = RefreshLimiter(clock, limit=1, window=10)
    for n in range(1100):
        limiter.take(SessionKey("jwt", f"user-{n}", "s"))
        if n == 0:
            clock.advance(11)
    assert len(limiter._seen) < 1100  # the first one's window passed: pruned


async def test_async_twin_replaces_and_revokes(chat: ChatAuth) -> None:
    first = (await chat.aget_session(ALICE, "s")).token
    second = (await arefresh_session(chat, ALICE, "s", first.value)).token
    assert second.value != first.value
    assert [t.value for t in chat.provider.revoked] == [first.value]  # type: ignore[attr-defined]
    again = (await arefresh_session(chat, ALICE, "s", first.value)).token
    assert again.value == second.value
    await chat.aclose()
