"""The session's in-process cache: an LRU- and TTL-bounded aiocache backend.

aiocache's own in-memory backend grows without bound and expires keys with
``loop.call_later`` timers tied to one event loop, so this one keeps an
``OrderedDict`` in LRU order and checks deadlines when an entry is read.

``EntityCache`` is what the managers use: one cache entry per stored key (model
kind, record name), holding the answers read for it — the whole entity, partial
reads by field set, sorted-set queries — so a write through the session drops
them all at once.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from aiocache.base import BaseCache
from aiocache.serializers import NullSerializer


class BoundedMemoryCache(BaseCache):  # type: ignore[misc] # aiocache ships no type hints
    """An aiocache backend holding at most ``max_size`` entries, each for ``ttl`` seconds.

    Values are kept as they are (``NullSerializer``); the least recently used entry
    goes first when the cache is full.
    """

    NAME = "bounded_memory"

    def __init__(
        self, *, max_size: int, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(serializer=NullSerializer(), timeout=None, ttl=ttl)
        self.max_size = max_size
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _live(self, key: Hashable) -> Any:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _store(self, key: Hashable, value: Any, ttl: float | None) -> None:
        self._entries[key] = (self._clock() + (ttl or self.ttl), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

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
        return 1 if self._entries.pop(key, None) is not None else 0

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> bool:
        self._entries.clear()
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


NOTHING = Cached.NOTHING
NOT_FOUND = Cached.NOT_FOUND
WHOLE: Hashable = None


class EntityCache:
    """Answers per stored key and variant (None: the whole entity; else a query).

    It calls the backend's storage methods (``_get``, ``_set``, ``_delete``) that
    aiocache's public ones wrap: the wrappers' logging, environment lookup and
    timeout handling cost about six times the lookup itself, on every hit.
    """

    def __init__(self, ttl: float, max_size: int) -> None:
        self.backend = BoundedMemoryCache(max_size=max_size, ttl=ttl)

    async def lookup(self, kind: str, name: str, variant: Hashable) -> Any:
        """The cached answer, ``NOT_FOUND``, or ``NOTHING``."""
        answers = await self.backend._get((kind, name))
        if answers is None:
            return NOTHING
        if answers is NOT_FOUND:
            return NOT_FOUND
        return answers.get(variant, NOTHING)

    async def remember(self, kind: str, name: str, variant: Hashable, value: Any) -> None:
        """Keep an answer; ``NOT_FOUND`` stands for every variant of the key."""
        if value is NOT_FOUND:
            await self.backend._set((kind, name), NOT_FOUND)
            return
        answers = await self.backend._get((kind, name))
        if answers is None or answers is NOT_FOUND:
            answers = {}
        answers[variant] = value
        await self.backend._set((kind, name), answers)

    async def replace(self, kind: str, name: str, entity: Any) -> None:
        """After a write: the new whole entity, every other answer dropped."""
        await self.backend._set((kind, name), {WHOLE: entity})

    async def forget(self, kind: str, name: str) -> None:
        await self.backend._delete((kind, name))
