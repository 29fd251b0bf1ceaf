"""``Session``: the stores a model is read and written through, and what keeps it up.

A session carries the Redis-side store and the fallback store, an optional
in-process cache, a circuit breaker in front of each store, a time bound on every
Redis call, and per-model counters. When Redis fails, times out or its breaker is
open, the managers answer from the fallback instead (``redis()`` raises
``RedisUnavailableError`` for them to catch), and every key written meanwhile is
recorded in the fallback, and deleted from Redis by every session (see ``guard``).

``Model.objects`` uses a default session built from the settings on first use;
``Model.objects.using(session)`` uses an explicit one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from types import TracebackType
from typing import Any

import attrs

from dbdaora import settings
from dbdaora.backends import FallbackStore, RedisSide, open_fallback, open_redis_side
from dbdaora.backends.redis.protocol import NodeRouting
from dbdaora.exceptions import ConfigurationError
from dbdaora.meta import MODELS, UNSET, ModelMeta, Unset
from dbdaora.session.breakers import make_breaker
from dbdaora.session.cache import EntityCache
from dbdaora.session.deadlines import Deadlines
from dbdaora.session.flights import Flights
from dbdaora.session.guard import Guard, Repairs
from dbdaora.session.nodes import NodeBreakers
from dbdaora.session.stats import Counting, ModelStats


class Session(Guard, Flights, Counting):
    """A Redis-side store and a fallback store, with what keeps reads up.

    Args:
        memory: URL or store of the Redis side; default from the settings.
        fallback: URL or store of the durable side; default from the settings.
        expire_time: seconds a Redis copy lives, for models whose Meta sets none.
        cache: ``{"ttl": seconds, "max_size": entries}`` for an in-process cache
            (``"policy": "lfu"`` evicts the least frequently used entry rather than
            the least recently used; ``"tracking"``: None, True or False, see
            ``settings.CacheOptions``), or None for none.
        breaker: ``{"fail_max": n, "reset_timeout": seconds, "probe_interval": seconds}``
            for the circuit breakers (one per store, and on a Redis Cluster one per
            master too), or None for none. An open breaker pings its store every
            ``probe_interval`` seconds and closes when it answers.
        memory_timeout: seconds each Redis call may take, or None for no bound.
        autopipeline: batch the Redis commands of operations started in the same
            event-loop iteration into one round trip (default True); applies to
            stores this session opens from a URL.
        repair_interval: seconds between checks of the fallback's repair records
            (Redis keys writes could not update, in any process).

    Each option left out comes from the settings. ``async with Session(...) as s:``
    closes the connections at the end; they open lazily, on first use.

    A session knows no model's records: it never encodes or decodes one, nor
    picks the store calls that read or write it; that is the managers' work.
    It holds the stores, what guards them, and the cache and counters the
    managers fill.
    """

    # The mixins declare no slots of their own: two bases with slots cannot be
    # combined, so every slot of the three is listed here.
    __slots__ = (
        "_deadlines",
        "_failed_stores",
        "_flights",
        "_nodes",
        "_repairs",
        "_stats",
        "cache",
        "expire_time",
        "fallback",
        "fallback_breaker",
        "memory",
        "memory_breaker",
        "memory_timeout",
    )

    def __init__(
        self,
        *,
        memory: str | RedisSide | None = None,
        fallback: str | FallbackStore | None = None,
        expire_time: int | Unset | None = UNSET,
        cache: dict[str, Any] | Unset | None = UNSET,
        breaker: dict[str, Any] | Unset | None = UNSET,
        memory_timeout: float | Unset | None = UNSET,
        autopipeline: bool | Unset = UNSET,
        repair_interval: float | Unset = UNSET,
    ) -> None:
        given: dict[str, Any] = {
            name: value
            for name, value in (
                ("expire_time", expire_time),
                ("cache", cache),
                ("breaker", breaker),
                ("memory_timeout", memory_timeout),
                ("autopipeline", autopipeline),
                ("repair_interval", repair_interval),
            )
            if not isinstance(value, Unset)
        }
        config = attrs.evolve(settings.current(), **given)
        self.memory: RedisSide = (
            open_redis_side(memory or config.memory, autopipeline=config.autopipeline)
            if memory is None or isinstance(memory, str)
            else memory
        )
        self.fallback: FallbackStore = (
            open_fallback(fallback or config.fallback)
            if fallback is None or isinstance(fallback, str)
            else fallback
        )
        self.expire_time: int | None = config.expire_time
        self.memory_timeout: float | None = config.memory_timeout
        self._deadlines = (
            None if config.memory_timeout is None else Deadlines(config.memory_timeout)
        )
        self.cache = None if config.cache is None else _cache(config.cache, self.memory)
        self.memory_breaker = make_breaker(
            config.breaker, f"memory {self.memory.url}", self.memory.ping
        )
        self.fallback_breaker = make_breaker(
            config.breaker, f"fallback {self.fallback.url}", self.fallback.ping
        )
        self._repairs = Repairs(config.repair_interval)  # the first Redis call repairs
        self._nodes: NodeBreakers | None = None
        if config.breaker is not None and isinstance(self.memory, NodeRouting):
            self._nodes = NodeBreakers(
                config.breaker,
                self.memory.url,
                self.memory.node_of,
                self.memory.ping_node,
                self._deadlines,
                self._repair_now,
            )
            self.memory.watch_nodes(self._nodes)
        self._flights: dict[Hashable, tuple[asyncio.Future[list[Any]], int]] = {}
        self._stats: dict[str, ModelStats] = {}
        self._failed_stores: set[str] = set()  # each store's first failure is logged

    def _repair_now(self) -> None:
        self._repairs.due = 0.0

    def ttl(self, meta: ModelMeta) -> int | None:
        """The TTL of the model's Redis keys: its Meta's, else this session's."""
        return self.expire_time if isinstance(meta.expire_time, Unset) else meta.expire_time

    # Calls to the stores, single flight and counters come from the mixins:
    # guard.Guard, flights.Flights, stats.Counting.

    async def close(self) -> None:
        """Stop the repairs' retries and the breakers' probes, then close both stores."""
        for breaker in (self.memory_breaker, self.fallback_breaker):
            if breaker is not None:
                await breaker.stop()
        if self._nodes is not None:
            await self._nodes.stop()
        await self.stop_repairs()
        if self.cache is not None and self.cache.tracked:
            self.memory.untrack(self.cache)
        await self.memory.close()
        await self.fallback.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def create_all(self) -> None:
        """Have the fallback create what every declared model needs (SQL: its tables)."""
        await self.fallback.create_all(list(MODELS.values()))


def _cache(options: settings.CacheOptions, memory: RedisSide) -> EntityCache:
    """The session's cache, tracked by ``memory`` where the options let it and it can.

    Raises:
        ConfigurationError: ``tracking`` is True and the store cannot track.
    """
    cache = EntityCache(options.ttl, options.max_size, options.policy)
    if options.tracking is not False:
        cache.tracked = memory.track(cache)
    if options.tracking and not cache.tracked:
        raise ConfigurationError(
            f'cache={{"tracking": True}}: the Redis store {memory.url} cannot track keys. '
            "Client tracking needs a Redis server, Sentinel or Cluster; memory:// has "
            "no client tracking, and on one server or Sentinel it needs autopipeline "
            "(one connection carries the reads and their invalidations). "
            'Use "tracking": None (tracked where possible, else expiry by ttl) or False.'
        )
    return cache


_default: Session | None = None


def default_session() -> Session:
    """The session ``Model.objects`` uses, built from the settings on first use."""
    global _default
    if _default is None:
        _default = Session()
    return _default


def reset_default() -> None:
    """Forget the default session; the next use builds one from the settings in force."""
    global _default
    _default = None


settings.on_change(reset_default)
