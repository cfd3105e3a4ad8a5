"""A cached read through Redis costs one round trip (issue 19), and none while the process
keeps the session (``LOCAL_CACHE``): counted by the server itself, not assumed. ``INFO stats``
``total_reads_processed`` counts the socket reads (one per round trip), ``INFO commandstats``
after ``CONFIG RESETSTAT`` the commands in them: the token's GET and its served time's ZSCORE,
pipelined."""

from __future__ import annotations

import asyncio
import secrets

import pytest
import redis

from chatauth import ChatAuth, ChatIdentity, ChatToken
from chatauth.stores.redis import RedisStore
from chatauth.testing.clock import ManualClock
from tests.core.providers import CountingProvider
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

READS = 25
# What the admin connection itself sends around the measurement.
OURS = {"config", "info"}


def reads(admin: redis.Redis) -> int:
    """The server's socket reads so far (this INFO command's own read included)."""
    return int(admin.info("stats")["total_reads_processed"])


def commands(admin: redis.Redis) -> dict[str, int]:
    """Calls per command since the last ``CONFIG RESETSTAT``, without our own."""
    stats = admin.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: n for name, n in counts.items() if name.split("|")[0] not in OURS}


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cached_read_is_one_get(redis_server: RedisServer, mode: str) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    store = RedisStore.from_url(redis_server.url, prefix=f"trips-{secrets.token_hex(4)}")
    # Without the process's cache: every read reaches Redis.
    chat = ChatAuth(CountingProvider(), store, local_cache=0)
    identity = ChatIdentity("user-trips")
    loop = asyncio.new_event_loop()
    try:
        if mode == "sync":
            first = chat.get_session(identity, "s")
            admin.config_resetstat()
            before = reads(admin)
            for _ in range(READS):
                assert chat.get_session(identity, "s").token == first.token
        else:
            first = loop.run_until_complete(chat.aget_session(identity, "s"))
            admin.config_resetstat()
            before = reads(admin)
            for _ in range(READS):
                again = loop.run_until_complete(chat.aget_session(identity, "s"))
                assert again.token == first.token
        # One read per cached request, plus the second INFO's own.
        assert reads(admin) - before == READS + 1
        assert commands(admin) == {"get": READS, "zscore": READS}
        assert chat.provider.issued == 1  # type: ignore[attr-defined]
    finally:
        loop.run_until_complete(chat.aclose())
        loop.close()
        admin.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_process_cache_spares_the_round_trip_until_it_expires(
    redis_server: RedisServer, mode: str
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    clock = ManualClock()
    store = RedisStore.from_url(
        redis_server.url, prefix=f"trips-{secrets.token_hex(4)}", clock=clock
    )
    chat = ChatAuth(CountingProvider(), store, local_cache=5, clock=clock)
    identity = ChatIdentity("user-trips")
    loop = asyncio.new_event_loop()

    def read() -> ChatToken:
        if mode == "sync":
            return chat.get_session(identity, "s").token
        return loop.run_until_complete(chat.aget_session(identity, "s")).token

    try:
        first = read()  # issued: the next read fetches it from Redis and keeps it
        admin.config_resetstat()
        for _ in range(READS):
            assert read() == first
        assert commands(admin) == {"get": 1, "zscore": 1}
        clock.advance(5.0)  # the entry's time is up: one more trip, then kept again
        for _ in range(READS):
            assert read() == first
        assert commands(admin) == {"get": 2, "zscore": 2}
        assert chat.provider.issued == 1  # type: ignore[attr-defined]
    finally:
        loop.run_until_complete(chat.aclose())
        loop.close()
        admin.close()
