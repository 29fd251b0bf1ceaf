"""EntityCache as the listener of Redis's invalidations (a tracked cache), in process.

The Redis side of tracking is tested on a real server in
tests/backends/redis/test_tracking.py; these pin what the cache does with what it hears.
"""

from __future__ import annotations

from dbdaora.session.cache import NOT_FOUND, NOTHING, WHOLE, EntityCache


def _tracked(max_size: int = 100) -> EntityCache:
    cache = EntityCache(None, max_size)
    cache.tracked = True
    return cache


async def test_an_invalidation_drops_every_entry_of_its_redis_key() -> None:
    """Two models sharing a Redis key: one invalidation drops both entries."""
    cache = _tracked()
    await cache.remember("A", "1", WHOLE, "a1", cache.ticket(), b"k:1")
    await cache.remember("B", "1", WHOLE, "b1", cache.ticket(), b"k:1")
    await cache.remember("A", "2", WHOLE, "a2", cache.ticket(), b"k:2")
    cache.invalidate([b"k:1", b"unknown"])
    assert await cache.lookup("A", "1", WHOLE) is NOTHING
    assert await cache.lookup("B", "1", WHOLE) is NOTHING
    assert await cache.lookup("A", "2", WHOLE) == "a2"
    assert cache.stats()["invalidations"] == 2


async def test_a_read_overtaken_by_an_invalidation_is_not_kept() -> None:
    """A ticket taken before an invalidation of the key, or before a flush, fills nothing."""
    cache = _tracked()
    ticket = cache.ticket()
    cache.invalidate([b"k:1"])
    await cache.remember("A", "1", WHOLE, "old", ticket, b"k:1")
    await cache.remember("A", "2", WHOLE, "other key", ticket, b"k:2")
    assert await cache.lookup("A", "1", WHOLE) is NOTHING
    assert await cache.lookup("A", "2", WHOLE) == "other key"
    ticket = cache.ticket()
    cache.flush()
    await cache.remember("A", "3", WHOLE, "old", ticket, b"k:3")
    assert await cache.lookup("A", "3", WHOLE) is NOTHING
    assert await cache.lookup("A", "2", WHOLE) is NOTHING  # flushed
    assert cache.stats()["flushes"] == 1


async def test_a_tracked_cache_keeps_nothing_after_a_write() -> None:
    """replace and deleted drop the entry (Redis no longer tracks the key); untracked,
    they keep the new entity and the not-found answer."""
    for tracked, kept, gone in ((True, NOTHING, NOTHING), (False, "new", NOT_FOUND)):
        cache = EntityCache(None, 10)
        cache.tracked = tracked
        await cache.replace("A", "1", "new")
        await cache.deleted("A", "2")
        assert await cache.lookup("A", "1", WHOLE) == kept
        assert await cache.lookup("A", "2", WHOLE) is gone


async def test_the_key_index_follows_evictions_and_failures_flush() -> None:
    """Evicted entries leave the Redis-key index (it stays within max_size); a failed
    call flushes a tracked cache only."""
    cache = _tracked(max_size=10)
    for i in range(100):
        await cache.remember("A", str(i), WHOLE, i, cache.ticket(), f"k:{i}".encode())
    assert len(cache.backend) == 10
    assert len(cache._keys) == len(cache._key_of) == 10  # the index, bounded too
    cache.invalidate([b"k:0", b"k:99"])
    assert len(cache.backend) == 9
    cache.failed()
    assert len(cache.backend) == 0 and cache.stats()["flushes"] == 1
    untracked = EntityCache(None, 10)
    await untracked.remember("A", "1", WHOLE, 1, untracked.ticket(), b"k:1")
    untracked.failed()
    assert await untracked.lookup("A", "1", WHOLE) == 1
