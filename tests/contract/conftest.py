"""Fixtures shared by the contract suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.raw import RawView

Side = tuple[Any, RawView]
"""A Redis-side store and a raw view of what it holds."""


@pytest.fixture(
    params=[
        "memory",
        "redis",
        "redis-direct",
        "tracked",
        "cluster",
        "cluster-tracked",
        "shards",
        "shards-tracked",
    ]
)
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    """A Redis-side store and a raw view of it; redis-direct is RedisStore unpipelined,
    tracked is RedisStore tracking keys for a cache (RESP3), cluster-tracked a cluster
    whose masters are watched for one; shards is 0.27's client-side hash ring over
    three servers, shards-tracked with a cache listening to each."""
    if request.param == "shards-tracked":
        from dbdaora.backends.redis.shards import ShardedStore
        from dbdaora.session.cache import EntityCache

        sharded = ShardedStore(request.getfixturevalue("shards_proc").url)
        assert sharded.track(EntityCache(None, 1000))
        pair: Side = (sharded, RawView(None, request.getfixturevalue("raw_shards")))
    elif request.param == "cluster-tracked":
        from dbdaora.backends.redis.cluster import ClusterStore
        from dbdaora.session.cache import EntityCache

        store = ClusterStore(request.getfixturevalue("cluster_proc").url)
        assert store.track(EntityCache(None, 1000))
        pair = (store, RawView(None, request.getfixturevalue("raw_cluster")))
    elif request.param == "redis-direct":
        from dbdaora.backends.redis.single import RedisStore

        url = request.getfixturevalue("redis_proc").url
        view = RawView(None, request.getfixturevalue("raw_redis"))
        pair = (RedisStore(url, autopipeline=False), view)
    else:
        pair = request.getfixturevalue(f"{request.param}_store")
    yield pair
    await pair[0].close()
