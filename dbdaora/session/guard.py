"""The guard around every store call: time bounds, circuit breakers, keys to repair.

``redis()`` is the path of every Redis-side call: bounded by ``memory_timeout``,
counted by the Redis breaker, and preceded by the deletion of keys written while
Redis was unreachable. Whatever goes wrong comes out as ``RedisUnavailableError``,
which the managers answer from the fallback. ``durable()`` puts the fallback's
breaker in front of a fallback call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import ParamSpec, TypeVar

from aiobreaker import CircuitBreakerError
from aiobreaker.state import CircuitBreakerState

from dbdaora.backends import FallbackStore, RedisSide
from dbdaora.exceptions import BackendError, RedisUnavailableError
from dbdaora.session.breakers import Breaker
from dbdaora.session.deadlines import Deadlines

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("dbdaora")

# An enum member is slow to reach through its class, and every Redis call asks.
_CLOSED = CircuitBreakerState.CLOSED


async def _reraise(exc: BaseException) -> None:
    raise exc


def _refused(breaker: Breaker, exc: CircuitBreakerError, what: str) -> str:
    """The message for a call the breaker refused, or for the failure that opened it."""
    cause = exc.__cause__
    if isinstance(cause, BackendError):
        return f"{cause.message}; {breaker.refusal()}"
    if isinstance(cause, TimeoutError):
        return f"{what} did not answer in time; {breaker.refusal()}"
    return f"{what} unavailable: {breaker.refusal()}"


class Guard:
    """The guarding half of ``Session``: its stores, their breakers, the keys to repair.

    The guard knows no models, records or counters: it sees store calls and
    Redis keys only, and reports an outage by raising, for the managers to
    answer and count.
    """

    __slots__ = ()

    memory: RedisSide
    fallback: FallbackStore
    memory_timeout: float | None
    memory_breaker: Breaker | None
    fallback_breaker: Breaker | None
    _deadlines: Deadlines | None
    _dirty: set[bytes]

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
                breaker.current_state is not _CLOSED or breaker.fail_counter
            ):
                result: T = await breaker.call_async(self._bounded, call, *args, **kwargs)
                return result
            # A closed breaker with no failures counted has nothing to do on a
            # success: skip its bookkeeping, and hand it only the failures.
            try:
                deadlines = self._deadlines
                if deadlines is None:
                    return await call(*args, **kwargs)
                task = deadlines.enter()
                if task is None:
                    return await deadlines.run(call, *args, **kwargs)
                # Deadlines.run's steps again, not a call to it: every Redis call
                # takes this path, and a call would add a coroutine frame to each.
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
            assert breaker is not None
            message = _refused(breaker, exc, "Redis")
            raise RedisUnavailableError(message, url=self.memory.url) from exc
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
        breaker = self.fallback_breaker
        if breaker is None:
            return await call(*args, **kwargs)
        try:
            result: T = await breaker.call_async(call, *args, **kwargs)
            return result
        except CircuitBreakerError as exc:
            message = _refused(breaker, exc, "fallback")
            raise BackendError(message, url=self.fallback.url) from exc

    def remember_unwritten(self, keys: Iterable[bytes]) -> None:
        """Keys whose Redis copy may be older than the fallback: delete them once Redis answers."""
        self._dirty.update(keys)
        logger.warning("Redis unavailable; %d key(s) to delete when it answers", len(self._dirty))

    async def _flush(self) -> None:
        keys = list(self._dirty)
        breaker = self.memory_breaker
        try:
            if breaker is None:
                await self._bounded(self.memory.evict, keys)
            else:
                await breaker.call_async(self._bounded, self.memory.evict, keys)
        except CircuitBreakerError as exc:
            assert breaker is not None
            raise RedisUnavailableError(
                "Redis unavailable while deleting keys written during an outage: "
                + breaker.refusal(),
                url=self.memory.url,
            ) from exc
        except (BackendError, TimeoutError) as exc:
            raise RedisUnavailableError(
                f"Redis unavailable while deleting keys written during an outage: {exc}",
                url=self.memory.url,
            ) from exc
        self._dirty.difference_update(keys)
