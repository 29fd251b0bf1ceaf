"""The tracked cache follows outside writes for every data type, on one node and a cluster.

Each model's answers are read twice (the second from the cache, counted), then a
plain redis-py client changes the Redis copy; the next reads must see the change
within the bound, so the cached answer was dropped by Redis's invalidation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dbdaora import Session
from tests.support.models import Liked, Ranking, Shop

CACHE = {"ttl": None, "max_size": 1000, "tracking": True}


@pytest.fixture(params=["node", "cluster"])
def redis_side(request: pytest.FixtureRequest) -> tuple[str, Any]:
    """(URL, a plain client emptied for the test) on a private redis-server or cluster."""
    if request.param == "node":
        return request.getfixturevalue("redis_proc").url, request.getfixturevalue("raw_redis")
    return request.getfixturevalue("cluster_proc").url, request.getfixturevalue("raw_cluster")


async def _cached_then_changed(
    session: Session, read: Callable[[], Awaitable[Any]], change: Callable[[], Any]
) -> tuple[Any, Any]:
    """The answer before ``change`` (its second read a cache hit) and the first answer that
    differs from it after; fails if none does within two seconds."""
    before = await read()
    hits = session.stats()["cache"]["hits"]
    assert await read() == before
    assert session.stats()["cache"]["hits"] == hits + 1
    change()
    deadline = time.monotonic() + 2.0
    while (after := await read()) == before:
        assert time.monotonic() < deadline, "the cached answer outlived the outside write"
        await asyncio.sleep(0.002)
    return before, after


async def test_a_flag_follows_an_outside_write(redis_side: tuple[str, Any]) -> None:
    """A set flag, cached, reads as unset once a plain client writes 0.27's miss (0)."""
    url, raw = redis_side
    async with Session(memory=url, fallback="memory://", cache=CACHE) as session:
        liked = Liked.objects.using(session)
        await liked.add(Liked(id="x"))
        changed = await _cached_then_changed(
            session, lambda: liked.exists("x"), lambda: raw.set(b"liked:x", b"0")
        )
        assert changed == (True, False)


async def test_a_geo_set_follows_an_outside_write(redis_side: tuple[str, Any]) -> None:
    """A cached ``near`` answer takes in a member a plain client GEOADDs."""
    url, raw = redis_side
    async with Session(memory=url, fallback="memory://", cache=CACHE) as session:
        shops = Shop.objects.using(session)
        await shops.add(Shop(city="paris", name="louvre", latitude=48.8606, longitude=2.3376))

        async def near() -> list[str]:
            found = await shops.near("paris", latitude=48.8566, longitude=2.3522, radius=5)
            return [shop.name for shop, _ in found]

        changed = await _cached_then_changed(
            session, near, lambda: raw.geoadd("shop:paris", (2.3266, 48.86, "orsay"))
        )
        assert changed == (["louvre"], ["louvre", "orsay"])


async def test_a_sorted_set_follows_an_outside_write(redis_side: tuple[str, Any]) -> None:
    """A cached range takes in a member a plain client ZADDs."""
    url, raw = redis_side
    async with Session(memory=url, fallback="memory://", cache=CACHE) as session:
        ranking = Ranking.objects.using(session)
        await ranking.add(Ranking(board="b", player="ann", points=1.0))

        async def players() -> list[str]:
            return [member.player for member in await ranking.range("b", 0, -1)]

        changed = await _cached_then_changed(
            session, players, lambda: raw.zadd("ranking:b", {"bob": 2.0})
        )
        assert changed == (["ann"], ["ann", "bob"])
