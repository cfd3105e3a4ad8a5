"""One deadline per provider operation, however slowly the provider answers (issue 13 item 5).

The emulator trickles its answer one byte at a time, each byte well within the read timeout,
so only a deadline on the whole operation can stop it. The service is given a short budget
(``RetryPolicy(timeout=BUDGET)``): ``get_session`` must end with
``ProviderUnavailableError`` once that budget is spent, long before the trickle would finish.
The upper bound is deliberately loose (a loaded machine); what it proves is that the call
ended near the budget and not when the provider finished talking.
"""

from __future__ import annotations

import time

import pytest

from chatauth import ChatAuth, ChatIdentity, ProviderUnavailableError
from chatauth.http import RetryPolicy
from chatauth.providers.cometchat import CometChatProvider
from chatauth.stores.memory import MemoryStore
from chatauth.testing.cometchat import DEFAULT_API_KEY, CometChatEmulator
from tests.servers.deadlines import REQUEST_DEADLINE

BUDGET = 1.0  # seconds: the injected deadline of one operation
INTERVAL = 0.25  # seconds between two bytes of the trickled body
#: Generous room above the budget for a loaded machine; still far below the trickle's length.
SLACK = 8.0


def trickle_seconds(emulator: CometChatEmulator) -> float:
    """How long the trickled answer (a 404 for an unknown user) would take to arrive."""
    import httpx

    response = httpx.get(
        emulator.base_url + "/users/nobody",
        headers={"apikey": DEFAULT_API_KEY},
        timeout=REQUEST_DEADLINE,
    )
    return len(response.content) * INTERVAL


def service(emulator: CometChatEmulator) -> ChatAuth:
    provider = CometChatProvider(
        emulator.app_id, DEFAULT_API_KEY, region=emulator.region, base_url=emulator.base_url
    )
    # Phase timeouts far above the trickle's byte interval: they cannot be what stops it.
    return ChatAuth(
        provider, MemoryStore(), timeout=REQUEST_DEADLINE, retry=RetryPolicy(timeout=BUDGET)
    )


def test_a_trickling_body_is_cut_at_the_deadline(cometchat_emulator: CometChatEmulator) -> None:
    total = trickle_seconds(cometchat_emulator)
    assert total > BUDGET + SLACK + 10  # the trickle alone would far outlast the bound
    chat = service(cometchat_emulator)
    cometchat_emulator.faults.trickle(interval=INTERVAL, path="/v3/users/", method="GET")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError) as info:
        chat.get_session(ChatIdentity("trickled"), "s1")
    elapsed = time.monotonic() - started
    assert BUDGET <= elapsed < BUDGET + SLACK, elapsed
    assert info.value.code == "ERROR_PROVIDER_UNAVAILABLE"
    assert "in time" in info.value.message
    # Once the provider answers normally again, so does the service.
    assert chat.get_session(ChatIdentity("trickled"), "s1").uid == "trickled"
    chat.close()


async def test_async_driver_cancels_the_trickle_at_the_deadline(
    cometchat_emulator: CometChatEmulator,
) -> None:
    chat = service(cometchat_emulator)
    cometchat_emulator.faults.trickle(interval=INTERVAL, path="/v3/users/", method="GET")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError):
        await chat.aget_session(ChatIdentity("trickled"), "s1")
    elapsed = time.monotonic() - started
    assert BUDGET <= elapsed < BUDGET + SLACK, elapsed
    await chat.aclose()


def test_a_silent_provider_is_not_retried_past_the_deadline(
    cometchat_emulator: CometChatEmulator,
) -> None:
    # The read timeout (REQUEST_DEADLINE per phase) is capped at what is left of the 1 s
    # budget: the first try times out at the deadline and no retry starts after it.
    chat = service(cometchat_emulator)
    cometchat_emulator.faults.timeout(times=3, path="/v3/users/", method="GET")
    started = time.monotonic()
    with pytest.raises(ProviderUnavailableError):
        chat.get_session(ChatIdentity("silent"), "s1")
    elapsed = time.monotonic() - started
    assert BUDGET <= elapsed < BUDGET + SLACK, elapsed
    assert cometchat_emulator.calls.count_of("GET", "/v3/users/silent") == 1
    chat.close()


def test_the_issue_lock_outlives_the_operation() -> None:
    for policy in (RetryPolicy(), RetryPolicy(timeout=60, cleanup_timeout=10)):
        chat = ChatAuth(
            CometChatProvider("app", "key", base_url="http://cc.test/v3"),
            MemoryStore(),
            retry=policy,
        )
        # Issue + revoking the replaced token, each with its undo budget and one read in
        # flight past each deadline (sync driver), and room to spare.
        worst = 2 * (policy.timeout + policy.cleanup_timeout + 2 * chat.timeout)
        assert chat.lock_ttl > worst
