"""Pytest plugin with the Redis Cluster and Sentinel fixtures (loaded by the root conftest).

The session fixtures are shared by every test and must not be stopped; a test that kills a
node (the failover tests) starts its own with a factory fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.servers.redis_cluster import RedisCluster
from tests.servers.redis_sentinel import RedisSentinel

_T = TypeVar("_T", RedisCluster, RedisSentinel)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """The shared 6-node Redis Cluster (3 primaries, 3 replicas). Do not stop its nodes."""
    with RedisCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinel]:
    """The shared primary + replica + 3 sentinels. Do not stop its processes."""
    with RedisSentinel() as sentinel:
        yield sentinel


def _factory(cls: Callable[..., _T]) -> Iterator[Callable[..., _T]]:
    started: list[_T] = []

    def start(**kwargs: Any) -> _T:
        topology = cls(**kwargs)
        started.append(topology)
        return topology.start()

    try:
        yield start
    finally:
        errors: list[BaseException] = []
        for topology in reversed(started):
            try:
                topology.cleanup()
            except BaseException as exc:  # re-raised below, after the others are stopped
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def redis_cluster_factory() -> Iterator[Callable[..., RedisCluster]]:
    """Start a separate cluster per call (keyword arguments go to ``RedisCluster``); every
    node of every cluster started is stopped by PID at teardown."""
    yield from _factory(RedisCluster)


@pytest.fixture
def redis_sentinel_factory() -> Iterator[Callable[..., RedisSentinel]]:
    """Start a separate primary/replica/sentinels set per call; all stopped at teardown."""
    yield from _factory(RedisSentinel)
