"""Latency of a cached-token request through Redis vs SQLite (issue 7).

Run with ``tox -e bench`` (``pytest tests/benchmarks --benchmark-only``); not part of the
default test run. Each benchmark times one ``get_session`` / ``aget_session`` whose token is
already stored: a store read plus the freshness check, no provider call. Figures are
reported, not asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from chatauth import ChatAuth, ChatIdentity
from chatauth.stores.base import BaseStore
from chatauth.stores.crypto import FernetCipher, generate_key
from chatauth.stores.redis import RedisStore
from chatauth.stores.sqlite import SQLiteStore
from tests.core.providers import CountingProvider
from tests.servers.redis import RedisServer

pytestmark = pytest.mark.redis

KINDS = ["sqlite", "sqlite+fernet", "redis", "redis+fernet"]


@pytest.fixture
def make_store(redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[[str], BaseStore]]:
    made: list[BaseStore] = []

    def make(kind: str) -> BaseStore:
        cipher = FernetCipher(generate_key()) if kind.endswith("+fernet") else None
        store: BaseStore
        if kind.startswith("redis"):
            store = RedisStore.from_url(redis_server.url, prefix=f"bench-{kind}", cipher=cipher)
        else:
            store = SQLiteStore(tmp_path / f"{kind}.db", cipher=cipher)
        made.append(store)
        return store

    yield make
    for store in made:
        if isinstance(store, RedisStore):
            for key in store.client.scan_iter(match=f"{store.prefix}:*"):
                store.client.delete(key)
        store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_cached_get_session(benchmark, make_store, kind: str) -> None:  # type: ignore[no-untyped-def]
    chat = ChatAuth(CountingProvider(), make_store(kind))
    identity = ChatIdentity("user-bench")
    first = chat.get_session(identity, "s")
    session = benchmark(chat.get_session, identity, "s")
    assert session.token == first.token
    assert chat.provider.issued == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", KINDS)
def test_cached_aget_session(benchmark, make_store, kind: str) -> None:  # type: ignore[no-untyped-def]
    # Redis answers on redis.asyncio; SQLite through asyncio.to_thread (BaseStore's twins).
    chat = ChatAuth(CountingProvider(), make_store(kind))
    identity = ChatIdentity("user-bench")
    loop = asyncio.new_event_loop()
    try:
        first = loop.run_until_complete(chat.aget_session(identity, "s"))
        session = benchmark(lambda: loop.run_until_complete(chat.aget_session(identity, "s")))
        assert session.token == first.token
        assert chat.provider.issued == 1  # type: ignore[attr-defined]
        loop.run_until_complete(chat.aclose())
    finally:
        loop.close()
