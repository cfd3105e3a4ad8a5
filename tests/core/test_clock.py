"""Time decisions of the service and the memory store, driven by moving a ManualClock.

Nothing here sleeps: the refresh margin, token expiry and issue-lock expiry are crossed by
``clock.advance``, one second either side of each boundary.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from chatauth import ChatAuth, ChatIdentity, ProviderUnavailableError
from chatauth.clock import SYSTEM_CLOCK
from chatauth.http import Flow
from chatauth.stores.base import LockTimeoutError
from chatauth.stores.memory import MemoryStore
from chatauth.testing.clock import ManualClock
from chatauth.tokens import ChatToken, SessionKey
from tests.core.providers import GATE_TIMEOUT, CountingProvider, TokenRevokingProvider

#: Where the clocks start: a whole second, so datetimes and floats agree to the microsecond.
T0 = 1_800_000_000.0
ALICE = ChatIdentity("alice")
KEY = SessionKey("jwt", "alice", "s")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=T0)


def test_the_service_reads_the_store_clock_unless_given_its_own(clock: ManualClock) -> None:
    assert ChatAuth(CountingProvider()).clock is SYSTEM_CLOCK
    assert ChatAuth(CountingProvider(), MemoryStore(clock=clock)).clock is clock
    other = ManualClock()
    assert ChatAuth(CountingProvider(), MemoryStore(clock=clock), clock=other).clock is other
    alone = ChatAuth(CountingProvider(), clock=clock)  # its default store shares the clock
    assert alone.store.clock is clock


def test_a_token_is_reused_until_the_refresh_margin_then_replaced(clock: ManualClock) -> None:
    provider = TokenRevokingProvider(clock=clock)
    chat = ChatAuth(provider, MemoryStore(clock=clock), token_ttl=3600, refresh_margin=300)
    first = chat.get_session(ALICE, "s").token

    clock.advance(3600 - 300 - 1)  # one second before the margin starts
    assert chat.get_session(ALICE, "s").token == first
    assert provider.issued == 1

    clock.advance(1)  # exactly refresh_margin left: no longer worth handing out
    second = chat.get_session(ALICE, "s").token
    assert second != first
    assert second.issued_at == clock.now()
    assert provider.issued == 2
    assert [t.value for t in provider.revoked] == [first.value]  # the replaced one dies
    assert chat.get_session(ALICE, "s").token == second  # and the new one is reused


async def test_async_refresh_margin_follows_the_clock(clock: ManualClock) -> None:
    provider = CountingProvider(clock=clock)
    chat = ChatAuth(provider, clock=clock, token_ttl=600, refresh_margin=60)
    first = (await chat.aget_session(ALICE, "s")).token
    clock.advance(539)
    assert (await chat.aget_session(ALICE, "s")).token == first
    clock.advance(1)
    assert (await chat.aget_session(ALICE, "s")).token != first
    assert provider.issued == 2
    await chat.aclose()


def test_token_ttl_caps_a_token_the_provider_never_expires(clock: ManualClock) -> None:
    class NeverExpiring(CountingProvider):
        def issue(self, identity: ChatIdentity, ttl: timedelta) -> Flow[ChatToken]:
            token = yield from super().issue(identity, ttl)
            return ChatToken(token.value, token.uid, token.provider, token.issued_at, None)

    provider = NeverExpiring(clock=clock)
    chat = ChatAuth(provider, clock=clock, token_ttl=900, refresh_margin=60)
    first = chat.get_session(ALICE, None).token
    assert first.expires_at is None
    assert first.refresh_at == clock.now() + timedelta(seconds=900)
    clock.advance(900 - 60 - 1)
    assert chat.get_session(ALICE, None).token == first
    clock.advance(1)
    assert chat.get_session(ALICE, None).token != first


class FlakyRevocation(TokenRevokingProvider):
    """Revocation fails with ProviderUnavailableError while ``down`` is set."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.down = True
        self.attempts = 0

    def revoke(self, token: ChatToken) -> Flow[None]:
        self.attempts += 1
        if self.down:
            raise ProviderUnavailableError("provider down", provider=self.name, retry_after=5)
        return super().revoke(token)


def test_a_queued_revocation_is_retried_until_the_token_expires_then_dropped(
    clock: ManualClock,
) -> None:
    provider = FlakyRevocation(clock)
    chat = ChatAuth(provider, MemoryStore(clock=clock), token_ttl=3600, refresh_margin=300)
    token = chat.get_session(ALICE, "s").token
    chat.end_session(ALICE, "s")  # the provider is down: the revocation is queued
    (entry,) = chat.store.pending()
    assert entry.created_at == clock.now()  # dated by the store's clock
    assert provider.attempts == 1

    assert token.expires_at is not None
    clock.advance(token.expires_at - clock.now() - timedelta(seconds=1))
    report = chat.revoke_pending()  # one second before expiry: still worth revoking
    assert (report.revoked, report.failed, report.remaining) == (0, 1, 1)
    assert provider.attempts == 2

    clock.advance(1)  # expired: nothing left to revoke, the entry is dropped unattempted
    report = chat.revoke_pending()
    assert (report.revoked, report.failed, report.remaining) == (1, 0, 0)
    assert provider.attempts == 2


class ObservedMemoryStore(MemoryStore):
    """A MemoryStore that says when a caller found the issue lock taken (and so polls it)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.contended = threading.Event()

    def _try_lock(self, key: SessionKey, owner: str, ttl: float) -> bool:
        taken = super()._try_lock(key, owner, ttl)
        if not taken:
            self.contended.set()
        return taken


def test_a_lock_expires_when_the_clock_passes_its_ttl(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    assert store._try_lock(KEY, "crashed-holder", 30)
    clock.advance(29)
    assert not store._try_lock(KEY, "me", 30)
    with pytest.raises(LockTimeoutError), store.lock(KEY, ttl=30, wait=0):
        pass
    clock.advance(1)  # the holder's 30 s are up
    with store.lock(KEY, ttl=30, wait=0):
        assert not store._try_lock(KEY, "someone-else", 30)
    assert store._try_lock(KEY, "someone-else", 30)  # released on the way out


def _in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run ``call`` in a thread; its result or exception lands in the returned list."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # handed to the test, which asserts on it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_crashed_holders_lock_delays_the_issue_until_it_expires(clock: ManualClock) -> None:
    store = ObservedMemoryStore(clock)
    provider = CountingProvider(clock=clock)
    chat = ChatAuth(provider, store)
    # Another worker took the issue lock for the service's lock_ttl and died holding it.
    assert store._try_lock(KEY, "crashed-holder", chat.lock_ttl)
    thread, outcome = _in_thread(lambda: chat.get_session(ALICE, "s"))
    assert store.contended.wait(GATE_TIMEOUT)  # the caller is polling the taken lock
    assert thread.is_alive() and provider.issued == 0

    clock.advance(chat.lock_ttl)  # the dead holder's lock expires; the wait has not run out
    thread.join(GATE_TIMEOUT)
    (session,) = outcome
    assert session.uid == "alice"  # type: ignore[attr-defined]
    assert provider.issued == 1


def test_a_lock_held_past_the_wait_fails_as_unavailable(clock: ManualClock) -> None:
    store = ObservedMemoryStore(clock)
    provider = CountingProvider(clock=clock)
    chat = ChatAuth(provider, store)
    wait = chat.lock_ttl + 5  # what the service waits for the issue lock
    assert store._try_lock(KEY, "slow-holder", wait * 10)
    thread, outcome = _in_thread(lambda: chat.get_session(ALICE, "s"))
    assert store.contended.wait(GATE_TIMEOUT)
    clock.advance(wait - 1)
    assert thread.is_alive()  # still within its wait (the poll keeps going)
    clock.advance(1)
    thread.join(GATE_TIMEOUT)
    (error,) = outcome
    assert isinstance(error, LockTimeoutError)
    assert error.retry_after == 1
    assert provider.issued == 0
