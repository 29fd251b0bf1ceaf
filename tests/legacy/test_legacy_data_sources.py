"""0.27's Redis data source factories on every real Redis URL: one node, a cluster,
a Sentinel deployment, several servers sharded as 0.27 did; and the URLs they refuse."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from dbdaora import (
    BackendError,
    ConfigurationError,
    DictFallbackDataSource,
    make_aioredis_data_source,
    make_redis_data_source,
)
from tests.support.cluster_server import ClusterServer
from tests.support.legacy_entities import Person, PersonRepository
from tests.support.sentinel_server import SentinelServer
from tests.support.servers import free_port
from tests.support.shards import SHARDS, ShardedClient, ShardedServers, ring_index


async def _round_trip(url: str) -> None:
    source = await make_aioredis_data_source(url)
    people = PersonRepository(
        memory_data_source=source, fallback_data_source=DictFallbackDataSource(), expire_time=60
    )
    try:
        await people.add(Person("a", "Ann", 1))
        assert await people.query("a").entity == Person("a", "Ann", 1)
    finally:
        await source.close()


async def test_aioredis_factory_on_a_cluster(
    cluster_proc: ClusterServer, raw_cluster: redis.RedisCluster
) -> None:
    """make_aioredis_data_source(cluster URL) writes the cluster."""
    await _round_trip(cluster_proc.url)
    assert raw_cluster.hget(b"person:a", "name") == b"Ann"


async def test_aioredis_factory_on_sentinel(sentinel: SentinelServer) -> None:
    """make_aioredis_data_source(Sentinel URL) writes the master the sentinels name."""
    await _round_trip(sentinel.url())
    with sentinel.master().client() as master:
        assert master.hget(b"person:a", "name") == b"Ann"


async def test_aioredis_factory_without_a_uri_is_the_default_redis() -> None:
    """No URI: redis:// (localhost:6379/0), as in 0.27; nothing is connected yet."""
    source = await make_aioredis_data_source()
    assert source.url == "redis://"


async def test_aioredis_factory_shards_several_uris(
    shards_proc: ShardedServers, raw_shards: ShardedClient
) -> None:
    """Several URIs: 0.27's sharded Redis, each key on the shard 0.27's hash ring names;
    its URL lists each shard's, passwords masked."""
    source = await make_aioredis_data_source(*shards_proc.urls)
    people = PersonRepository(
        memory_data_source=source, fallback_data_source=DictFallbackDataSource(), expire_time=60
    )
    names = [f"p{i}" for i in range(12)]
    try:
        for name in names:
            await people.add(Person(name, "Ann", 1))
        assert [await people.query(name).entity for name in names] == [
            Person(name, "Ann", 1) for name in names
        ]
    finally:
        await source.close()
    for name in names:
        key = f"person:{name}".encode()
        holders = [i for i, client in enumerate(raw_shards.clients) if client.exists(key)]
        assert holders == [ring_index(key, SHARDS)]
    assert len({ring_index(f"person:{name}", SHARDS) for name in names}) == SHARDS
    masked = await make_aioredis_data_source("redis://:pw@h1:6379/0", "redis://:pw@h2:6379/1")
    assert "pw" not in masked.url and "redis://:***@h2:6379/1" in masked.url


async def test_aioredis_factory_takes_027s_ring_size(
    shards_proc: ShardedServers, raw_shards: ShardedClient
) -> None:
    """hashring_nodes_size=2 over three URIs: keys on the first two servers only, each where
    md5 modulo 2 puts it, as 0.27; a size beyond the servers is refused before any I/O."""
    source = await make_aioredis_data_source(*shards_proc.urls, hashring_nodes_size=2)
    people = PersonRepository(
        memory_data_source=source, fallback_data_source=DictFallbackDataSource(), expire_time=60
    )
    try:
        for name in (f"p{i}" for i in range(8)):
            await people.add(Person(name, "Ann", 1))
    finally:
        await source.close()
    for i in range(8):
        key = f"person:p{i}".encode()
        holders = [n for n, client in enumerate(raw_shards.clients) if client.exists(key)]
        assert holders == [ring_index(key, 2)]
    sizes: list[Any] = [0, 4, "2"]  # "2": a str, as a careless config file gives it
    for size in sizes:
        with pytest.raises(ConfigurationError, match="hashring_nodes_size"):
            await make_aioredis_data_source(*shards_proc.urls, hashring_nodes_size=size)


async def test_aioredis_factory_refuses_a_cluster_among_several_uris() -> None:
    """A shard is one server: a cluster or Sentinel URL among several is refused, masked."""
    with pytest.raises(ConfigurationError, match="is not a shard's URL") as raised:
        await make_aioredis_data_source("redis://h1:6379", "redis+cluster://:pw@h2:7000")
    assert "pw" not in str(raised.value) and "redis+cluster://:***@h2:7000" in str(raised.value)


@pytest.mark.parametrize("url", ["memory://", "http://:pw@h:1/"])
async def test_not_a_redis_url(url: str) -> None:
    """Anything but a real Redis URL: ConfigurationError, password masked."""
    with pytest.raises(ConfigurationError, match="is not a Redis URL") as raised:
        await make_redis_data_source(url)
    assert ":pw@" not in str(raised.value)


async def test_a_bad_sentinel_url_is_refused() -> None:
    """A Sentinel URL without a master name: ConfigurationError naming it, masked."""
    with pytest.raises(ConfigurationError, match="no master name") as raised:
        await make_redis_data_source("redis+sentinel://:pw@127.0.0.1:26379")
    assert "redis+sentinel://:***@127.0.0.1:26379" in str(raised.value)


async def test_a_cluster_with_no_reachable_node_is_a_backend_error_naming_them() -> None:
    """No listed node answers: BackendError naming every node, password masked."""
    nodes = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    source = await make_redis_data_source(f"redis+cluster://:pw@{','.join(nodes)}")
    try:
        with pytest.raises(BackendError) as raised:
            await source.ping()
    finally:
        await source.close()
    text = str(raised.value)
    assert all(node in text for node in nodes) and ":pw@" not in text
