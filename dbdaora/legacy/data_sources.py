"""0.27's data sources, as the core's stores.

A repository takes a store for each side, or its URL: the fallback side goes
through the scheme table of ``dbdaora.backends``, so every fallback backend
registered there (``memory://`` today) works as a 0.27 fallback data source
with no code here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dbdaora.backends.fallback.dict import DictFallback
from dbdaora.backends.redis.inprocess import InProcessRedis
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.backends.urls import mask_url, open_redis_side
from dbdaora.exceptions import ConfigurationError

REDIS_SCHEMES = ("redis", "rediss", "unix")


class DictMemoryDataSource(InProcessRedis):
    """The Redis side in process: the ``memory://`` store (no server)."""

    def __init__(self) -> None:
        super().__init__("memory://")


class DictFallbackDataSource(DictFallback):
    """The fallback in process: the ``memory://`` fallback (a dict)."""

    def __init__(self) -> None:
        super().__init__("memory://")


async def make_redis_data_source(url: str) -> RedisSide:
    """A Redis data source on a real server (``redis://``, ``rediss://``, ``unix://``).

    A coroutine, as 0.27's factories were: ``functools.partial(make_redis_data_source,
    url)`` is a ``memory_data_source_factory``. Connections open on first use, on
    the event loop using them.

    Raises:
        ConfigurationError: not a Redis URL, or the ``redis`` extra is not installed.
    """
    if urlsplit(url).scheme not in REDIS_SCHEMES:
        raise ConfigurationError(
            f"{mask_url(url)!r} is not a Redis URL; schemes: {list(REDIS_SCHEMES)}"
        )
    return open_redis_side(url)
