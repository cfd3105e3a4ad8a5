"""``redis+cluster://`` and ``redis+sentinel://`` STORE URLs: parsing and malformed URLs.

Building a store connects to nothing (redis-py connects on first use), so these need no
server; the stores themselves run against real ones in test_redis.py.
"""

from __future__ import annotations

import pytest

from chatauth import ConfigurationError, StoreUnavailableError
from chatauth.config import store_from_url
from chatauth.stores.redis_topologies import RedisClusterStore, RedisSentinelStore, parse_hosts
from chatauth.tokens import SessionKey
from tests.servers.ports import free_port


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (picked free, never bound)."""
    return free_port()


PASSWORD = "hunter2-s3cret"


def test_cluster_url_names_every_startup_node_and_takes_redis_options() -> None:
    store = store_from_url(
        f"redis+cluster://:{PASSWORD}@10.0.0.1:7000,10.0.0.2,[::1]:7002"
        "?socket_timeout=1.5&key_prefix=myapp"
    )
    assert isinstance(store, RedisClusterStore)
    assert store.prefix == "myapp"
    # Nothing is connected yet: the client is built on first use (an unreachable cluster at
    # start-up is a 503 on the first request, not an app that cannot start).
    nodes = store.client.startup  # type: ignore[attr-defined]
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    kwargs = store.client.options  # type: ignore[attr-defined]
    assert kwargs["socket_timeout"] == 1.5
    assert kwargs["password"] == PASSWORD
    assert PASSWORD not in repr(store)
    assert repr(store) == (
        "<RedisClusterStore 'redis+cluster://10.0.0.1:7000,10.0.0.2:6379,::1:7002' prefix='myapp'>"
    )
    store.close()


def test_an_unreachable_cluster_is_store_unavailable_on_use(unused_port: int) -> None:
    store = store_from_url(f"redis+cluster://127.0.0.1:{unused_port}?socket_connect_timeout=0.5")
    key = SessionKey("matrix", "alice", "s")
    for _ in range(2):  # and tried again on the next use
        with pytest.raises(StoreUnavailableError) as info:
            store.get(key)
        assert info.value.code == "ERROR_STORE_UNAVAILABLE"
        assert info.value.retry_after == 1
    store.close()


def test_sentinel_url_names_the_sentinels_service_and_db() -> None:
    store = store_from_url(
        f"redis+sentinel://user:{PASSWORD}@s1:5000,s2/mymaster/3"
        "?sentinel_password=sp&socket_connect_timeout=0.5"
    )
    assert isinstance(store, RedisSentinelStore)
    assert store.sentinel is not None
    sentinels = [c.connection_pool.connection_kwargs for c in store.sentinel.sentinels]
    assert [(k["host"], k["port"], k["password"]) for k in sentinels] == [
        ("s1", 5000, "sp"),
        ("s2", 26379, "sp"),
    ]
    pool = store.client.connection_pool
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["db"] == 3
    assert pool.connection_kwargs["username"] == "user"
    assert pool.connection_kwargs["password"] == PASSWORD
    assert pool.connection_kwargs["socket_connect_timeout"] == 0.5
    assert PASSWORD not in repr(store)
    assert "redis+sentinel://s1:5000,s2:26379/mymaster" in repr(store)
    store.close()


@pytest.mark.parametrize(
    "url",
    [
        f"redis+cluster://:{PASSWORD}@",
        f"redis+cluster://:{PASSWORD}@h1:7000,,h2:7001",
        f"redis+cluster://:{PASSWORD}@h1:port",
        f"redis+cluster://:{PASSWORD}@h1:70000",
        f"redis+cluster://:{PASSWORD}@h1:7000/2",
        f"redis+cluster://:{PASSWORD}@h1:7000?socket_timeout=abc",
        f"redis+cluster://:{PASSWORD}@[::1:7000",
        f"redis+sentinel://:{PASSWORD}@h1:26379",
        f"redis+sentinel://:{PASSWORD}@h1:26379/",
        f"redis+sentinel://:{PASSWORD}@h1:26379/mymaster/db",
        f"redis+sentinel://:{PASSWORD}@h1:x/mymaster",
        f"redis+sentinel://:{PASSWORD}@h1/mymaster?socket_timeout=abc",
        f"redis+sentinel://:{PASSWORD}@[::1/mymaster",
    ],
)
def test_malformed_urls_are_configuration_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        store_from_url(url)
    assert info.value.code == "ERROR_CONFIG"
    assert info.value.setting == "STORE"
    assert PASSWORD not in str(info.value)
    assert "redis+" in str(info.value)


def test_parse_hosts_keeps_the_rest_for_redis_pys_parser() -> None:
    hosts, rest = parse_hosts("redis+sentinel://u:p@a:1,b:2/svc/0?x=1", "redis+sentinel", 26379)
    assert hosts == [("a", 1), ("b", 2)]
    assert rest == "redis://u:p@a:1/svc/0?x=1"
