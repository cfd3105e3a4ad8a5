"""The cluster and sentinel fixtures: a missing binary fails with the install command, and the
shared servers are what they claim to be (read from the servers themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.redis_cluster import RedisCluster, find_redis_cli, info_fields
from tests.servers.redis_sentinel import RedisSentinel, find_redis_sentinel


def test_a_missing_redis_sentinel_or_cli_fails_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REDIS_SENTINEL", str(tmp_path / "nope"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-sentinel"):
        find_redis_sentinel()
    monkeypatch.setattr("tests.servers.redis_cluster.REDIS_CLI", str(tmp_path / "nope"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y redis-tools"):
        find_redis_cli()


@pytest.mark.redis
def test_the_cluster_has_three_primaries_with_a_replica_each(redis_cluster: RedisCluster) -> None:
    roles = [info_fields(n.command("INFO", "replication")) for n in redis_cluster.nodes]
    assert sorted(r["role"] for r in roles) == ["master"] * 3 + ["slave"] * 3
    for node in redis_cluster.nodes:
        assert info_fields(node.command("CLUSTER", "INFO"))["cluster_state"] == "ok"
        assert node.host == "127.0.0.1"


@pytest.mark.redis
def test_the_sentinels_name_the_primary(redis_sentinel: RedisSentinel) -> None:
    assert redis_sentinel.master_address() == ("127.0.0.1", redis_sentinel.primary.port)
    replica = info_fields(redis_sentinel.replica.command("INFO", "replication"))
    assert replica["role"] == "slave" and replica["master_link_status"] == "up"
