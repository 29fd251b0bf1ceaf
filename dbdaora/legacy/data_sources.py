"""0.27's data sources, as the core's stores.

A repository takes a store for each side, or its URL: both sides go through the
scheme table of ``dbdaora.backends``, so every backend registered there works as
a 0.27 data source with no code here: on the Redis side one node, a cluster or a
Sentinel deployment.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dbdaora.backends.fallback.dict import DictFallback
from dbdaora.backends.redis.inprocess import InProcessRedis
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.backends.urls import mask_url, open_redis_side
from dbdaora.exceptions import ConfigurationError

# Every URL of a real Redis: one node, a cluster, or the master a Sentinel names.
REDIS_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
    "redis+shards",
    "rediss+shards",
)
# What 0.27's make_aioredis_data_source() opened with no URI: redis-py's default.
DEFAULT_URI = "redis://"


class DictMemoryDataSource(InProcessRedis):
    """The Redis side in process: the ``memory://`` store (no server)."""

    def __init__(self) -> None:
        super().__init__("memory://")


class DictFallbackDataSource(DictFallback):
    """The fallback in process: the ``memory://`` fallback (a dict)."""

    def __init__(self) -> None:
        super().__init__("memory://")


async def make_redis_data_source(url: str) -> RedisSide:
    """A Redis data source on a real server: one node (``redis://``, ``rediss://``,
    ``unix://``), a cluster (``redis+cluster://``) or a Sentinel deployment's master
    (``redis+sentinel://``).

    A coroutine, as 0.27's factories were: ``functools.partial(make_redis_data_source,
    url)`` is a ``memory_data_source_factory``. Connections open on first use, on
    the event loop using them.

    Raises:
        ConfigurationError: not a Redis URL, a malformed one, or the ``redis`` extra
            is not installed.
    """
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"{mask_url(url)!r} is not a Redis URL; schemes: {list(REDIS_SCHEMES)}"
        )
    return open_redis_side(url)


async def make_aioredis_data_source(
    *uris: str, hashring_nodes_size: int | None = None
) -> RedisSide:
    """0.27's aioredis factory: the data source of one Redis URL, as
    ``make_redis_data_source`` (a cluster or Sentinel URL included); none is
    ``redis://`` (localhost:6379, database 0), as in 0.27.

    Several URIs are 0.27's sharded Redis: each key on the server 0.27's hash ring
    names (``ShardedStore``), so what 0.27 wrote is found where it is;
    ``hashring_nodes_size`` is the ring's modulus, as in 0.27 (keys on the first
    that many servers; none: all of them); with one URI it is unused, as in 0.27.

    Raises:
        ConfigurationError: a URI ``make_redis_data_source`` refuses, or among
            several one that is not a single server's (``redis://``, ``rediss://``,
            ``unix://``), a ring size out of range, or the ``redis`` extra is not
            installed.
    """
    if len(uris) > 1:
        # Imported here, as the scheme table imports a store: only where it is used,
        # for its driver is the ``redis`` extra's.
        try:
            from dbdaora.backends.redis.shards import ShardedStore
        except ImportError as exc:
            raise ConfigurationError(
                f"sharded Redis needs a driver: pip install 'dbdaora[redis]' ({exc})"
            ) from exc
        return ShardedStore(uris, ring_size=hashring_nodes_size)
    return await make_redis_data_source(uris[0] if uris else DEFAULT_URI)
