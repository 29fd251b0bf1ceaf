"""The session cache's eviction policies (LRU, LFU) and entries without a TTL."""

from __future__ import annotations

from dbdaora.session.cache import BoundedMemoryCache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _fill(cache: BoundedMemoryCache) -> None:
    for key in ("a", "b", "c"):
        await cache._set(key, key.upper())
    for key in ("a", "a", "b"):
        assert await cache._get(key) == key.upper()


async def test_lfu_evicts_the_least_frequently_used() -> None:
    """A full LFU cache drops the entry read least often; among equals, the oldest."""
    cache = BoundedMemoryCache(max_size=3, ttl=60, policy="lfu")
    await _fill(cache)
    await cache._set("d", "D")  # c was never read
    assert [await cache._get(key) for key in ("a", "b", "c")] == ["A", "B", None]
    await cache._set("e", "E")  # d has one use, the fewest
    assert await cache._get("d") is None
    assert len(cache) == 3


async def test_lru_evicts_the_least_recently_used() -> None:
    """A full LRU cache drops the entry read longest ago, however often it was read."""
    cache = BoundedMemoryCache(max_size=3, ttl=60, policy="lru")
    await _fill(cache)
    await cache._get("c")
    await cache._set("d", "D")  # a: read twice, but before b and c
    assert await cache._get("a") is None
    assert [await cache._get(key) for key in ("b", "c", "d")] == ["B", "C", "D"]


async def test_lfu_after_deletes_and_expiry() -> None:
    """Deleted and expired entries leave the LFU order; eviction still picks a live entry."""
    clock = Clock()
    cache = BoundedMemoryCache(max_size=2, ttl=10, policy="lfu", clock=clock)
    await cache._set("a", 1)
    await cache._get("a")
    await cache._set("b", 2)
    assert await cache._delete("b") == 1
    await cache._set("c", 3, ttl=1)
    clock.now = 2
    assert await cache._get("c") is None  # expired
    await cache._set("d", 4)
    await cache._set("e", 5)  # full: d has fewer uses than a
    assert [await cache._get(key) for key in ("a", "d", "e")] == [1, None, 5]


async def test_no_ttl_keeps_entries_until_evicted() -> None:
    """ttl None: an entry stays however much time passes."""
    clock = Clock()
    cache = BoundedMemoryCache(max_size=2, ttl=None, clock=clock)
    await cache._set("a", 1)
    clock.now = 10**9
    assert await cache._get("a") == 1
