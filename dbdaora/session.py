"""``Session``: the stores a model is read and written through, and what keeps it up.

A session carries the Redis-side store and the fallback store, an optional
in-process cache, a circuit breaker in front of each store, a time bound on every
Redis call, and per-model counters. When Redis fails, times out or its breaker is
open, the managers answer from the fallback instead (``redis()`` raises
``RedisUnavailableError`` for them to catch), and every key written meanwhile is
remembered and deleted from Redis before the session's next Redis command.

``Model.objects`` uses a default session built from the settings on first use;
``Model.objects.using(session)`` uses an explicit one.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import attrs
from aiobreaker import CircuitBreaker, CircuitBreakerError, CircuitBreakerListener
from aiobreaker.state import CircuitBreakerState

from dbdaora import settings
from dbdaora.backends import FallbackStore, MemoryStore, open_fallback, open_memory
from dbdaora.cache import EntityCache
from dbdaora.deadlines import Deadlines
from dbdaora.exceptions import BackendError, RedisUnavailableError
from dbdaora.meta import MODELS, UNSET, Unset

if TYPE_CHECKING:
    from dbdaora.meta import ModelMeta

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("dbdaora")


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


class _LogStateChanges(CircuitBreakerListener):  # type: ignore[misc] # aiobreaker ships no type hints
    def state_change(self, breaker: CircuitBreaker, old: Any, new: Any) -> None:
        logger.warning(
            "circuit breaker %s: %s -> %s", breaker.name, _state_name(old), _state_name(new)
        )


def _state_name(state: Any) -> str:
    """``closed``, ``open`` or ``half-open``, from a state object or its enum member."""
    member = getattr(state, "state", state)
    return str(member.name).lower().replace("_", "-")


async def _reraise(exc: BaseException) -> None:
    raise exc


def _is_not_an_outage(exc: Exception) -> bool:
    return not isinstance(exc, (BackendError, TimeoutError))


def _make_breaker(options: settings.BreakerOptions | None, name: str) -> CircuitBreaker | None:
    if options is None:
        return None
    return CircuitBreaker(
        fail_max=options.fail_max,
        timeout_duration=datetime.timedelta(seconds=options.reset_timeout),
        exclude=[_is_not_an_outage],
        listeners=[_LogStateChanges()],
        name=name,
    )


class Session:
    """A Redis-side store and a fallback store, with what keeps reads up.

    Args:
        memory: URL or store of the Redis side; default from the settings.
        fallback: URL or store of the durable side; default from the settings.
        expire_time: seconds a Redis copy lives, for models whose Meta sets none.
        cache: ``{"ttl": seconds, "max_size": entries}`` for an in-process cache
            (``"policy": "lfu"`` evicts the least frequently used entry rather than
            the least recently used), or None for none.
        breaker: ``{"fail_max": n, "reset_timeout": seconds}`` for the circuit
            breakers (one per store), or None for none.
        memory_timeout: seconds each Redis call may take, or None for no bound.
        autopipeline: batch the Redis commands of operations started in the same
            event-loop iteration into one round trip (default True); applies to
            stores this session opens from a URL.

    Each option left out comes from the settings. ``async with Session(...) as s:``
    closes the connections at the end; they open lazily, on first use.
    """

    def __init__(
        self,
        *,
        memory: str | MemoryStore | None = None,
        fallback: str | FallbackStore | None = None,
        expire_time: int | Unset | None = UNSET,
        cache: dict[str, Any] | Unset | None = UNSET,
        breaker: dict[str, Any] | Unset | None = UNSET,
        memory_timeout: float | Unset | None = UNSET,
        autopipeline: bool | Unset = UNSET,
    ) -> None:
        given: dict[str, Any] = {
            name: value
            for name, value in (
                ("expire_time", expire_time),
                ("cache", cache),
                ("breaker", breaker),
                ("memory_timeout", memory_timeout),
                ("autopipeline", autopipeline),
            )
            if not isinstance(value, Unset)
        }
        config = attrs.evolve(settings.current(), **given)
        self.memory: MemoryStore = (
            open_memory(memory or config.memory, autopipeline=config.autopipeline)
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
        self.cache: EntityCache | None = (
            None
            if config.cache is None
            else EntityCache(config.cache.ttl, config.cache.max_size, config.cache.policy)
        )
        self.memory_breaker = _make_breaker(config.breaker, f"memory {self.memory.url}")
        self.fallback_breaker = _make_breaker(config.breaker, f"fallback {self.fallback.url}")
        self._dirty: set[bytes] = set()
        self._flights: dict[Hashable, tuple[asyncio.Future[list[Any]], int]] = {}
        self._stats: dict[str, ModelStats] = {}

    def ttl(self, meta: ModelMeta) -> int | None:
        """The TTL of the model's Redis keys: its Meta's, else this session's."""
        return self.expire_time if isinstance(meta.expire_time, Unset) else meta.expire_time

    # -- guarded calls ------------------------------------------------------------------

    async def redis(self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one Redis-side call, bounded in time and behind the breaker.

        Keys written while Redis was unreachable are deleted first.

        Raises:
            RedisUnavailableError: the call failed, timed out, or the breaker is open.
        """
        if self._dirty:
            await self._flush()
        breaker = self.memory_breaker
        try:
            if breaker is not None and (
                breaker.current_state is not CircuitBreakerState.CLOSED or breaker.fail_counter
            ):
                result: T = await breaker.call_async(self._bounded, call, *args, **kwargs)
                return result
            # A closed breaker with no failures counted has nothing to do on a
            # success: skip its bookkeeping, and hand it only the failures.
            deadlines = self._deadlines
            task = None if deadlines is None else deadlines.enter()
            try:
                if task is None:
                    return await self._bounded(call, *args, **kwargs)
                # Deadlines.run's steps inline: this is every Redis call's path.
                assert deadlines is not None
                try:
                    return await call(*args, **kwargs)
                except asyncio.CancelledError:
                    deadlines.raise_if_expired(task)
                    raise
                finally:
                    deadlines.leave(task)
            except (BackendError, TimeoutError) as exc:
                if breaker is not None:
                    await breaker.call_async(_reraise, exc)
                raise
        except CircuitBreakerError as exc:
            raise RedisUnavailableError(f"Redis unavailable: {exc}", url=self.memory.url) from exc
        except TimeoutError as exc:
            raise RedisUnavailableError(
                f"Redis did not answer within {self.memory_timeout}s", url=self.memory.url
            ) from exc
        except RedisUnavailableError:
            raise
        except BackendError as exc:
            raise RedisUnavailableError(exc.message, url=self.memory.url) from exc

    async def _bounded(
        self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._deadlines is None:
            return await call(*args, **kwargs)
        return await self._deadlines.run(call, *args, **kwargs)

    async def durable(
        self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one fallback call behind its breaker.

        Raises:
            BackendError: the call failed, or the breaker is open.
        """
        if self.fallback_breaker is None:
            return await call(*args, **kwargs)
        try:
            result: T = await self.fallback_breaker.call_async(call, *args, **kwargs)
            return result
        except CircuitBreakerError as exc:
            cause = exc.__cause__
            if isinstance(cause, BackendError):
                raise cause from cause.__cause__
            raise BackendError(f"fallback unavailable: {exc}", url=self.fallback.url) from exc

    def remember_unwritten(self, keys: Iterable[bytes]) -> None:
        """Keys whose Redis copy may be older than the fallback: delete them once Redis answers."""
        self._dirty.update(keys)
        logger.warning("Redis unavailable; %d key(s) to delete when it answers", len(self._dirty))

    async def _flush(self) -> None:
        keys = list(self._dirty)
        try:
            if self.memory_breaker is None:
                await self._bounded(self.memory.evict, keys)
            else:
                await self.memory_breaker.call_async(self._bounded, self.memory.evict, keys)
        except (CircuitBreakerError, BackendError, TimeoutError) as exc:
            raise RedisUnavailableError(
                f"Redis unavailable while deleting keys written during an outage: {exc}",
                url=self.memory.url,
            ) from exc
        self._dirty.difference_update(keys)

    # -- single flight ------------------------------------------------------------------

    async def coalesce(
        self,
        kind: Hashable,
        names: Sequence[str],
        read: Callable[[list[str]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``read(names)``, sharing reads of the same names already under way.

        Concurrent callers asking for a name being read wait for that read instead
        of starting another; one caller's cancellation leaves the read running for
        the others.
        """
        own = [name for name in dict.fromkeys(names) if (kind, name) not in self._flights]
        if own:
            task = asyncio.ensure_future(read(own))
            for index, name in enumerate(own):
                self._flights[(kind, name)] = (task, index)
            task.add_done_callback(lambda done: self._land(done, kind, own))
        pending = [self._flights[(kind, name)] for name in names]
        return [(await asyncio.shield(task))[index] for task, index in pending]

    async def lead(
        self,
        kind: Hashable,
        names: Sequence[str],
        read: Callable[[list[str]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``read(names)`` as a read others may join; alone if one of them is under way.

        For a reader whose read must start after something it just did (a fill
        lease taken): a read already under way may be older than that.
        """
        if any((kind, name) in self._flights for name in names):
            return await read(list(names))
        return await self.coalesce(kind, names, read)

    def _land(self, task: asyncio.Future[list[Any]], kind: Hashable, names: list[str]) -> None:
        for name in names:
            if self._flights.get((kind, name), (None,))[0] is task:
                del self._flights[(kind, name)]
        if not task.cancelled():
            task.exception()  # retrieved here, so a read nobody awaits any more is not logged

    # -- stats --------------------------------------------------------------------------

    def stats_for(self, meta: ModelMeta) -> ModelStats:
        stats = self._stats.get(meta.name)
        if stats is None:
            stats = self._stats[meta.name] = ModelStats()
        return stats

    def stats(self) -> dict[str, Any]:
        """Counters per model, and each breaker's state (``closed``, ``open``, ``half-open``)."""
        return {
            "models": {name: attrs.asdict(stats) for name, stats in self._stats.items()},
            "breakers": {
                "memory": _breaker_state(self.memory_breaker),
                "fallback": _breaker_state(self.fallback_breaker),
            },
        }

    # -- lifetime -------------------------------------------------------------------------

    async def close(self) -> None:
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


def _breaker_state(breaker: CircuitBreaker | None) -> str:
    return "none" if breaker is None else _state_name(breaker.current_state)


_default: Session | None = None


def default_session() -> Session:
    """The session ``Model.objects`` uses, built from the settings on first use."""
    global _default
    if _default is None:
        _default = Session()
    return _default


def reset_default() -> None:
    global _default
    _default = None
