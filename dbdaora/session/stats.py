"""Per-model counters, and the breakers' states, for ``Session.stats()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from dbdaora.session.breakers import breaker_state

if TYPE_CHECKING:
    from aiobreaker import CircuitBreaker

    from dbdaora.meta import ModelMeta
    from dbdaora.session.cache import EntityCache
    from dbdaora.session.nodes import NodeBreakers


@attrs.define
class ModelStats:
    """Counters of one model's traffic through a session."""

    cache_hits: int = 0
    redis_hits: int = 0
    misses: int = 0
    fallback_reads: int = 0
    fallback_writes: int = 0
    not_found: int = 0
    errors: int = 0


class Counting:
    """The counting half of ``Session``: one ``ModelStats`` per model."""

    __slots__ = ()

    memory_breaker: CircuitBreaker | None
    fallback_breaker: CircuitBreaker | None
    _stats: dict[str, ModelStats]
    _nodes: NodeBreakers | None
    cache: EntityCache | None

    def stats_for(self, meta: ModelMeta) -> ModelStats:
        stats = self._stats.get(meta.name)
        if stats is None:
            stats = self._stats[meta.name] = ModelStats()
        return stats

    def stats(self) -> dict[str, Any]:
        """Counters per model, and each breaker's state (``closed``, ``open``, ``half-open``);
        on a Redis Cluster, once a master failed, ``nodes``: each such master's (or
        ``pending``, back and waiting for a repair). With a cache, ``cache``: its hits,
        misses and hit ratio, and (tracked) the keys Redis invalidated and the whole
        flushes (a lost connection, FLUSHALL, a failed Redis call)."""
        breakers: dict[str, Any] = {
            "memory": breaker_state(self.memory_breaker),
            "fallback": breaker_state(self.fallback_breaker),
        }
        nodes = {} if self._nodes is None else self._nodes.states()
        if nodes:
            breakers["nodes"] = nodes
        stats = {
            "models": {name: attrs.asdict(stats) for name, stats in self._stats.items()},
            "breakers": breakers,
        }
        if self.cache is not None:
            stats["cache"] = self.cache.stats()
        return stats
