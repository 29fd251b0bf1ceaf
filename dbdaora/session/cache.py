"""The session's in-process cache: a size- and TTL-bounded aiocache backend.

aiocache's own in-memory backend grows without bound and expires keys with
``loop.call_later`` timers tied to one event loop, so this one keeps a dict,
an eviction order (least recently or least frequently used), and checks
deadlines when an entry is read.

``EntityCache`` is what the managers use: one cache entry per stored key (model
kind, record name), holding the answers read for it — the whole entity, partial
reads by field set, sorted-set queries — so a write through the session drops
them all at once.
"""

from __future__ import annotations

import enum
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Final

from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer

from dbdaora.session.tracing import note_cache_hit
from dbdaora.settings import Policy


class _RecencyOrder:
    """Least recently used first."""

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)

    def use(self, key: Hashable) -> None:
        self._keys.move_to_end(key)

    def remove(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def victim(self) -> Hashable:
        return next(iter(self._keys))

    def clear(self) -> None:
        self._keys.clear()


class _FrequencyOrder:
    """Least frequently used first; among keys used as often, the least recently used.

    Keys sit in one bucket per use count, so a use, an eviction and a removal
    each cost O(1) (the lowest count is found again only after a removal).
    """

    __slots__ = ("_buckets", "_lowest", "_uses")

    def __init__(self) -> None:
        self._uses: dict[Hashable, int] = {}
        self._buckets: dict[int, OrderedDict[Hashable, None]] = {}
        self._lowest: int | None = None

    def add(self, key: Hashable) -> None:
        if key in self._uses:
            self.use(key)
            return
        self._uses[key] = 1
        self._buckets.setdefault(1, OrderedDict())[key] = None
        self._lowest = 1

    def use(self, key: Hashable) -> None:
        count = self._uses[key]
        self._take(key, count)
        if self._lowest == count and count not in self._buckets:
            self._lowest = count + 1
        self._uses[key] = count + 1
        self._buckets.setdefault(count + 1, OrderedDict())[key] = None

    def remove(self, key: Hashable) -> None:
        count = self._uses.pop(key, None)
        if count is not None:
            self._take(key, count)
            if self._lowest == count and count not in self._buckets:
                self._lowest = None

    def victim(self) -> Hashable:
        if self._lowest is None:
            self._lowest = min(self._buckets)
        return next(iter(self._buckets[self._lowest]))

    def clear(self) -> None:
        self._uses.clear()
        self._buckets.clear()
        self._lowest = None

    def _take(self, key: Hashable, count: int) -> None:
        bucket = self._buckets[count]
        del bucket[key]
        if not bucket:
            del self._buckets[count]


class BoundedMemoryCache(BaseCache):  # type: ignore[misc] # aiocache ships no type hints
    """An aiocache backend holding at most ``max_size`` entries, each for ``ttl`` seconds.

    Values are kept as they are (``NullSerializer``). When the cache is full the
    ``policy`` picks the entry that goes: ``"lru"`` the least recently used,
    ``"lfu"`` the least frequently used. ``ttl`` None keeps entries until evicted.
    ``dropped`` hears of each key that goes one at a time (not of ``clear``).
    """

    NAME = "bounded_memory"

    def __init__(
        self,
        *,
        max_size: int,
        ttl: float | None,
        policy: Policy = "lru",
        clock: Callable[[], float] = time.monotonic,
        dropped: Callable[[Hashable], None] | None = None,
    ) -> None:
        super().__init__(serializer=NullSerializer(), timeout=None, ttl=ttl)
        self.max_size = max_size
        self.policy = policy
        self._clock = clock
        self._dropped = dropped
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._order = _FrequencyOrder() if policy == "lfu" else _RecencyOrder()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: Hashable) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(key)
            return None
        self._order.use(key)
        return entry[1]

    def _store(self, key: Hashable, value: Any, ttl: float | None) -> None:
        lifetime = ttl or self.ttl
        deadline = math.inf if lifetime is None else self._clock() + lifetime
        if key not in self._entries:
            while len(self._entries) >= self.max_size:
                self._drop(self._order.victim())
        self._entries[key] = (deadline, value)
        self._order.add(key)

    def _drop(self, key: Hashable) -> bool:
        self._order.remove(key)
        if self._entries.pop(key, None) is None:
            return False
        if self._dropped is not None:
            self._dropped(key)
        return True

    def clear(self) -> None:
        self._entries.clear()
        self._order.clear()

    async def _get(self, key: Hashable, encoding: str | None = None, _conn: Any = None) -> Any:
        return self._live(key)

    async def _gets(self, key: Hashable, encoding: str | None = None, _conn: Any = None) -> Any:
        return self._live(key)

    async def _multi_get(
        self, keys: list[Hashable], encoding: Any = None, _conn: Any = None
    ) -> Any:
        return [self._live(key) for key in keys]

    async def _set(
        self,
        key: Hashable,
        value: Any,
        ttl: float | None = None,
        _cas_token: Any = None,
        _conn: Any = None,
    ) -> bool:
        if _cas_token is not None and _cas_token != self._live(key):
            return False
        self._store(key, value, ttl)
        return True

    async def _multi_set(self, pairs: Any, ttl: float | None = None, _conn: Any = None) -> bool:
        for key, value in pairs:
            self._store(key, value, ttl)
        return True

    async def _add(
        self, key: Hashable, value: Any, ttl: float | None = None, _conn: Any = None
    ) -> bool:
        if self._live(key) is not None:
            raise ValueError(f"Key {key!r} already exists, use .set to update the value")
        self._store(key, value, ttl)
        return True

    async def _exists(self, key: Hashable, _conn: Any = None) -> bool:
        return self._live(key) is not None

    async def _increment(self, key: Hashable, delta: int, _conn: Any = None) -> int:
        value = int(self._live(key) or 0) + delta
        self._store(key, value, None)
        return value

    async def _expire(self, key: Hashable, ttl: float, _conn: Any = None) -> bool:
        value = self._live(key)
        if value is None:
            return False
        self._store(key, value, ttl)
        return True

    async def _delete(self, key: Hashable, _conn: Any = None) -> int:
        return 1 if self._drop(key) else 0

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        self.clear()
        return True

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._entries, command)(*args, **kwargs)

    async def _redlock_release(self, key: Hashable, value: Any) -> int:
        if self._live(key) == value:
            return await self._delete(key)
        return 0

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        return None


class Cached(enum.Enum):
    """What a cache lookup found besides a value."""

    NOTHING = "not cached"
    NOT_FOUND = "cached as not found"


NOTHING: Final = Cached.NOTHING
NOT_FOUND: Final = Cached.NOT_FOUND
WHOLE: Hashable = None


class EntityCache:
    """Answers per model and stored key, and variant (None: the whole entity; else a query).

    ``kind`` is the model class: two models sharing a ``key_name`` keep their
    answers apart.

    It calls the backend's storage methods (``_get``, ``_set``, ``_delete``) that
    aiocache's public ones wrap: the wrappers' logging, environment lookup and
    timeout handling cost about six times the lookup itself, on every hit.

    A read that started before a write of its key and ends after it must not
    put its older answer back: a reader takes a ``ticket()`` before it reads
    and hands it to ``remember``, which keeps the answer only if no write of the
    key came after the ticket. Writes are numbered; the last write of each key
    is kept for as many keys as the cache holds, and when that overflows, every
    read older than the overflow is kept out instead.

    Tracked (``tracked``, set once the store's connection tracks it, see
    ``backends.redis.wire.tracking``), it is also the listener of Redis's
    invalidations. An invalidated Redis key counts as a write of that key: its
    answers go, and a read in flight when it came (whose ticket is older) is
    not kept. ``flush`` drops everything and keeps out every read in flight: a
    lost connection, FLUSHALL, a failed Redis call. A write through the session
    keeps nothing: Redis's own invalidation of it ends the key's tracking, so
    only the next read, tracked again, may fill the entry.
    """

    __slots__ = (
        "_floor",
        "_key_of",
        "_keys",
        "_writes",
        "_written",
        "backend",
        "flushes",
        "hits",
        "invalidations",
        "misses",
        "tracked",
    )

    def __init__(self, ttl: float | None, max_size: int, policy: Policy = "lru") -> None:
        self.backend = BoundedMemoryCache(
            max_size=max_size, ttl=ttl, policy=policy, dropped=self._dropped
        )
        self._writes = 0
        self._written: dict[Hashable, int] = {}
        self._floor = 0
        self.tracked = False
        # Tracked: each entry's Redis key, and the entries of each Redis key.
        self._key_of: dict[Hashable, bytes] = {}
        self._keys: dict[bytes, list[Hashable]] = {}  # lists: mostly one entry a key
        self.hits = self.misses = self.invalidations = self.flushes = 0

    def stats(self) -> dict[str, Any]:
        """Lookups that hit and missed, invalidated keys, whole flushes, entries held."""
        lookups = self.hits + self.misses
        return {
            "tracking": self.tracked,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": self.hits / lookups if lookups else 0.0,
            "invalidations": self.invalidations,
            "flushes": self.flushes,
            "entries": len(self.backend),
        }

    def ticket(self) -> int:
        """What a reader hands to ``remember`` for the answer it is about to read."""
        return self._writes

    def _wrote(self, key: Hashable) -> None:
        self._writes += 1
        written = self._written
        written[key] = self._writes
        if len(written) > self.backend.max_size:
            written.clear()
            self._floor = self._writes

    async def lookup(self, kind: Hashable, name: str, variant: Hashable) -> Any:
        """The cached answer, ``NOT_FOUND``, or ``NOTHING``."""
        answers = await self.backend._get((kind, name))
        if answers is None:
            self.misses += 1
            return NOTHING
        if answers is NOT_FOUND:
            self.hits += 1
            note_cache_hit()
            return NOT_FOUND
        answer = answers.get(variant, NOTHING)
        if answer is NOTHING:
            self.misses += 1
        else:
            self.hits += 1
            note_cache_hit()
        return answer

    async def remember(
        self,
        kind: Hashable,
        name: str,
        variant: Hashable,
        value: Any,
        ticket: int,
        redis_key: bytes,
    ) -> None:
        """Keep an answer read from ``redis_key`` since ``ticket``, unless a write of the
        entry or an invalidation of the Redis key came after it.

        ``NOT_FOUND`` stands for every variant of the key.
        """
        key = (kind, name)
        written = self._written
        if (
            ticket < self._floor
            or written.get(key, 0) > ticket
            or written.get(redis_key, 0) > ticket
        ):
            return
        if self.tracked and self._key_of.get(key) != redis_key:
            self._key_of[key] = redis_key
            self._keys.setdefault(redis_key, []).append(key)
        if value is NOT_FOUND:
            await self.backend._set(key, NOT_FOUND)
            return
        answers = await self.backend._get(key)
        if answers is None or answers is NOT_FOUND:
            answers = {}
        answers[variant] = value
        await self.backend._set(key, answers)

    async def replace(self, kind: Hashable, name: str, entity: Any) -> None:
        """After a write: the new whole entity, every other answer dropped (tracked: none)."""
        if self.tracked:
            await self.forget(kind, name)
            return
        self._wrote((kind, name))
        await self.backend._set((kind, name), {WHOLE: entity})

    async def deleted(self, kind: Hashable, name: str) -> None:
        """After a delete: not found, for every variant (tracked: no answer)."""
        if self.tracked:
            await self.forget(kind, name)
            return
        self._wrote((kind, name))
        await self.backend._set((kind, name), NOT_FOUND)

    async def forget(self, kind: Hashable, name: str) -> None:
        """After a write whose result the writer does not hold whole: no answers."""
        self._wrote((kind, name))
        await self.backend._delete((kind, name))

    # Tracked: the listener of the store's connection (``Invalidations``).

    def invalidate(self, keys: Sequence[bytes]) -> None:
        """Redis says these keys changed: their answers go, and reads in flight of them
        are not kept."""
        self.invalidations += len(keys)
        index, key_of, drop = self._keys, self._key_of, self.backend._drop
        for redis_key in keys:
            self._wrote(redis_key)
            for key in index.pop(redis_key, ()):
                del key_of[key]
                drop(key)

    def flush(self) -> None:
        """Every answer goes, and no read in flight is kept."""
        self.flushes += 1
        self._writes += 1
        self._floor = self._writes
        self._written.clear()
        self._keys.clear()
        self._key_of.clear()
        self.backend.clear()

    def failed(self) -> None:
        """A Redis call failed: tracked, flush, since invalidations may have been lost
        (and while Redis is down, or its breaker open, no answer is kept)."""
        if self.tracked:
            self.flush()

    def _dropped(self, key: Hashable) -> None:
        """An entry expired or was evicted: its Redis key no longer names it."""
        redis_key = self._key_of.pop(key, None)
        if redis_key is not None:
            entries = self._keys[redis_key]
            entries.remove(key)
            if not entries:
                del self._keys[redis_key]
