"""Fixtures shared by the contract suites."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.raw import RawView

Side = tuple[Any, RawView]
"""A Redis-side store and a raw view of what it holds."""


@pytest.fixture(params=["memory", "redis", "redis-direct", "tracked", "cluster"])
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    """A Redis-side store and a raw view of it; redis-direct is RedisStore unpipelined,
    tracked is RedisStore tracking keys for a cache (RESP3)."""
    if request.param == "redis-direct":
        from dbdaora.backends.redis.single import RedisStore

        url = request.getfixturevalue("redis_proc").url
        view = RawView(None, request.getfixturevalue("raw_redis"))
        pair: Side = (RedisStore(url, autopipeline=False), view)
    else:
        pair = request.getfixturevalue(f"{request.param}_store")
    yield pair
    await pair[0].close()
