"""The guard around every store call: time bounds, circuit breakers, keys to repair.

``redis()`` is the path of every Redis-side call: bounded by ``memory_timeout``,
counted by the Redis breaker, and preceded, when a repair is due, by the deletion
of the Redis keys the fallback's repair records name. Whatever goes wrong comes
out as ``RedisUnavailableError``, which the managers answer from the fallback.
``durable()`` puts the fallback's breaker in front of a fallback call.

Repair: a write that could not update a Redis copy records its keys in the
fallback (``remember_unwritten``) before it is acknowledged. Every session, in
every process, deletes the recorded keys from Redis and then clears the records
(``_repair``): before its first Redis call, before the first Redis call after one
failed, and otherwise, beside the calls, ``repair_interval`` seconds after its last.
A session that recorded keys also retries in the background until a repair
succeeds. So once Redis answers, no session serves a copy older than an
acknowledged write for longer than ``repair_interval``, whoever wrote it.

Each repair first checks that Redis did not restart with older data (``restarts``):
when it did, the declared models' keys are swept before Redis serves them again.

On a Redis Cluster, each master has its breaker (``nodes``): a master's failure
(``NodeUnavailableError``) sends only its keys to the fallback, and makes no
repair due. A repair deletes the recorded keys master by master; a master it
cannot reach keeps its keys recorded until it comes back, and is then refused
until a repair reached it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from time import monotonic
from typing import ParamSpec, TypeVar

from aiobreaker import CircuitBreakerError
from aiobreaker.state import CircuitBreakerState

from dbdaora.backends import FallbackStore, RedisSide
from dbdaora.backends.loops import stop_tasks
from dbdaora.exceptions import BackendError, NodeUnavailableError, RedisUnavailableError
from dbdaora.meta import key_prefixes
from dbdaora.session.breakers import Breaker
from dbdaora.session.deadlines import Deadlines
from dbdaora.session.nodes import REPAIRING, NodeBreakers
from dbdaora.session.restarts import SWEEP_WAIT, Restarts, stale, sweep_until_current
from dbdaora.session.tracing import fallback_call

P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("dbdaora")

# An enum member is slow to reach through its class, and every Redis call asks.
_CLOSED = CircuitBreakerState.CLOSED

REPAIR_BATCH = 1000
"""Repair records read at once; a full batch makes the next repair due at once."""


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


def _retrieved(future: asyncio.Future[None]) -> None:
    """Mark a repair's error as seen: a repair run aside fails quietly, and stays due."""
    if not future.cancelled():
        future.exception()


class Repairs:
    """A session's repair state (see the module's docstring)."""

    __slots__ = (
        "dirty",
        "due",
        "interval",
        "recorded",
        "repaired",
        "restarts",
        "retrying",
        "running",
    )

    def __init__(self, interval: float) -> None:
        self.interval = interval
        # Keys this session recorded (or failed to record): deleted by its next
        # repair even if the records cannot be read then.
        self.dirty: set[bytes] = set()
        self.due = 0.0  # monotonic time of the next repair; 0.0: before the next call
        self.running: asyncio.Future[None] | None = None  # the repair callers await
        self.retrying: asyncio.Task[None] | None = None  # the background retry
        self.recorded = 0  # remember_unwritten calls so far
        self.repaired = 0  # of which a repair started after them covered so many
        self.restarts = Restarts()


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
    _repairs: Repairs
    _nodes: NodeBreakers | None
    _failed_stores: set[str]

    async def redis(self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run one Redis-side call, bounded in time and behind the breaker.

        When a repair is due, the keys the repair records name are deleted first.

        Raises:
            RedisUnavailableError: the call failed, timed out, or the breaker is open.
        """
        if monotonic() >= self._repairs.due:
            # After a failure (due 0.0), wait for the repair; a periodic one runs aside.
            await self.repair(wait=not self._repairs.due)
        breaker = self.memory_breaker
        try:
            if breaker is not None and (
                breaker.current_state is not _CLOSED or breaker.fail_counter
            ):
                result: T = await breaker.guard(self._bounded, call, *args, **kwargs)
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
                if breaker is not None and not isinstance(exc, NodeUnavailableError):
                    await breaker.call_async(_reraise, exc)
                raise
        except NodeUnavailableError:
            raise  # that master's breaker counted it; its keys go to the fallback
        except CircuitBreakerError as exc:
            self._repairs.due = 0.0  # Redis may miss writes meanwhile: repair first
            assert breaker is not None
            message = _refused(breaker, exc, "Redis")
            raise RedisUnavailableError(message, url=self.memory.url) from exc
        except TimeoutError as exc:
            self._repairs.due = 0.0
            error = RedisUnavailableError(
                f"Redis did not answer within {self.memory_timeout}s", url=self.memory.url
            )
            self._first_failure("memory", error)
            raise error from exc
        except RedisUnavailableError as exc:
            self._repairs.due = 0.0
            self._first_failure("memory", exc)
            raise
        except BackendError as exc:
            self._repairs.due = 0.0
            self._first_failure("memory", exc)
            raise RedisUnavailableError(exc.message, url=self.memory.url) from exc

    def _first_failure(self, store: str, error: BackendError) -> None:
        """Log a store's first failure in the session, URL and cause: not a quiet outage."""
        if store not in self._failed_stores:
            self._failed_stores.add(store)
            then = "the fallback answers" if store == "memory" else "calls fail"
            logger.warning("%s store %s failed: %s; %s", store, error.url, error.message, then)

    def by_node(self, keys: Iterable[bytes]) -> list[list[int]] | None:
        """The indexes of ``keys`` grouped by the cluster master serving each, so that a
        call per group fails alone; None where they make one group (or one node)."""
        nodes = self._nodes
        if nodes is None:
            return None
        node_of = nodes.node_of
        groups: dict[str | None, list[int]] = {}
        for i, key in enumerate(keys):
            groups.setdefault(node_of(key), []).append(i)
        return list(groups.values()) if len(groups) > 1 else None

    async def _bounded(
        self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        if self._deadlines is None:
            return await call(*args, **kwargs)
        return await self._deadlines.run(call, *args, **kwargs)

    @fallback_call
    async def durable(
        self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Run one fallback call behind its breaker (in a span, when tracing is on).

        Raises:
            BackendError: the call failed, or the breaker is open.
        """
        breaker = self.fallback_breaker
        try:
            if breaker is None:
                return await call(*args, **kwargs)
            try:
                result: T = await breaker.call_async(call, *args, **kwargs)
            except CircuitBreakerError as exc:
                message = _refused(breaker, exc, "fallback")
                raise BackendError(message, url=self.fallback.url) from exc
            return result
        except BackendError as exc:
            self._first_failure("fallback", exc)
            raise

    async def remember_unwritten(self, keys: Iterable[bytes]) -> None:
        """Keys whose Redis copy may be older than the fallback: record them for repair.

        Every session, in every process, deletes recorded keys from Redis once it
        reaches Redis; this one also retries in the background.

        Raises:
            BackendError: the record could not be written. The write before it is
                in the fallback, but other processes may serve the old Redis copy
                until its TTL: the write is not acknowledged, and repeating it
                (once the fallback answers) records the keys again.
        """
        keys = list(keys)
        self._repairs.dirty.update(keys)
        self._repairs.recorded += 1
        self._repairs.due = 0.0
        logger.warning(
            "memory store %s missed a write: %d key(s) recorded for repair in the fallback",
            self.memory.url,
            len(keys),
        )
        self._retry_in_background()
        try:
            await self.durable(self.fallback.add_repairs, keys)
        except BackendError as exc:
            raise BackendError(
                "written to the fallback, but its Redis copy could not be updated nor "
                f"recorded for repair (other processes may read the old copy): {exc.message}",
                url=exc.url,
            ) from exc

    async def repair(self, *, wait: bool = True) -> None:
        """Delete the Redis keys that repair records name, then clear those records.

        Concurrent callers share one repair, and each that waits is served by
        Redis only once it is over. With ``wait=False`` the repair runs aside
        (the periodic check, which must not make a Redis call wait on the fallback).

        Raises:
            RedisUnavailableError: Redis could not be reached; the repair stays due.
        """
        running = self._repairs.running
        if (
            running is None
            or running.done()
            or running.get_loop() is not asyncio.get_running_loop()
        ):
            running = self._repairs.running = asyncio.ensure_future(self._repair())
            running.add_done_callback(_retrieved)
        if wait:
            await asyncio.shield(running)

    async def _repair(self) -> None:
        REPAIRING.set(True)  # this repair's task only: pending masters answer it
        covered = set(self._nodes.pending) if self._nodes is not None else set()
        breaker = self.memory_breaker
        if breaker is not None and breaker.refusing():
            raise RedisUnavailableError(
                f"Redis unavailable: {breaker.refusal()}", url=self.memory.url
            )
        await self._check_restart()
        started, local = self._repairs.recorded, list(self._repairs.dirty)
        try:
            records = await self.durable(self.fallback.repairs, REPAIR_BATCH)
        except BackendError as exc:
            logger.warning("repair records unreadable, only this session's keys deleted: %s", exc)
            records, unread = [], True
        else:
            unread = False
        keys = list({*local, *(key for key, _ in records)})
        kept: set[bytes] = set()
        if keys:
            kept = await self._evict(keys)
            self._repairs.dirty.difference_update(set(local) - kept)
        records = [record for record in records if record[0] not in kept]
        if self._nodes is not None:
            self._nodes.repaired({node for node in covered if not self._nodes.refuses(node)})
        if records:
            try:
                await self.durable(self.fallback.clear_repairs, records)
            except BackendError as exc:  # harmless: the keys are deleted again next time
                logger.warning("repair records not cleared: %s", exc)
        full = len(records) >= REPAIR_BATCH
        self._repairs.due = 0.0 if full else monotonic() + self._repairs.interval
        if not unread:
            self._repairs.repaired = max(self._repairs.repaired, started)

    async def _evict(self, keys: Sequence[bytes]) -> set[bytes]:
        """Delete ``keys``; those on a master (a shard) that is down are kept, and returned,
        whether they are on several or all on that one."""
        what = "deleting keys written during an outage"
        if self._nodes is None:
            await self._on_redis(what, self.memory.evict, keys)
            return set()
        kept: set[bytes] = set()
        for group in self.by_node(keys) or [list(range(len(keys)))]:
            batch = [keys[i] for i in group]
            try:
                await self._on_redis(what, self.memory.evict, batch)
            except NodeUnavailableError:
                kept.update(batch)
        return kept

    async def _on_redis(
        self, what: str, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """A repair's Redis call, bounded and behind the breaker; failures make a repair due."""
        try:
            if self.memory_breaker is None:
                return await self._bounded(call, *args, **kwargs)
            result: T = await self.memory_breaker.guard(self._bounded, call, *args, **kwargs)
            return result
        except NodeUnavailableError:
            raise
        except (CircuitBreakerError, BackendError, TimeoutError) as exc:
            self._repairs.due = 0.0
            breaker = self.memory_breaker
            refused = isinstance(exc, CircuitBreakerError)
            why = breaker.refusal() if refused and breaker is not None else str(exc)
            error = RedisUnavailableError(
                f"Redis unavailable while {what}: {why}", url=self.memory.url
            )
            self._first_failure("memory", error)
            raise error from exc

    async def _check_restart(self) -> None:
        """Raise until no declared model's keys may hold copies from before a restart.

        Raises:
            RedisUnavailableError: Redis restarted and its keys are being swept, or
                it could not be reached.
        """
        restarts = self._repairs.restarts
        task = restarts.sweeping
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            try:
                found = await self._on_redis("checking for a restart", self.memory.epochs)
            except NodeUnavailableError:
                # The cluster master holding the epochs is down: it is checked again
                # once it answers; a session that never checked waits for it.
                if restarts.checked:
                    return
                raise
            instance = found.instance
            prefixes = stale(key_prefixes(), instance, found.swept)
            # A prefix with no epoch yet (a Redis dbdaora never checked, or one
            # that still holds dbdaora 0.27's data) is adopted, its keys kept,
            # unless the server loaded data from disk: they may predate any epoch.
            new = [] if found.restored else [p for p in prefixes if p not in found.swept]
            outdated = [prefix for prefix in prefixes if prefix not in new]
            if not outdated:
                if new:
                    await self._on_redis(
                        "recording its epoch",
                        self.memory.sweep,
                        [],
                        instance,
                        restarts.token,
                        keep=new,
                    )
                restarts.checked = True
                return
            logger.warning(
                "Redis restarted or reloaded its data (run_id %s): deleting the keys of "
                "%d prefix(es); the fallback answers until then",
                instance.decode(errors="replace"),
                len(outdated),
            )
            restarts.started = monotonic()
            sweep = sweep_until_current(self.memory, outdated, instance, restarts.token, keep=new)
            task = restarts.sweeping = loop.create_task(sweep)
            task.add_done_callback(_retrieved)
        try:
            bound = SWEEP_WAIT if self.memory_timeout is None else self.memory_timeout
            wait = restarts.started + bound - monotonic()
            await asyncio.wait_for(asyncio.shield(task), max(wait, 0.0))
            restarts.checked = True
        except (TimeoutError, BackendError) as exc:
            self._repairs.due = 0.0
            raise RedisUnavailableError(
                "Redis restarted and may hold copies older than the fallback: "
                f"they are being deleted ({exc or 'not done yet'})",
                url=self.memory.url,
            ) from exc

    def _retry_in_background(self) -> None:
        task = self._repairs.retrying
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            retry, loop = self._retry_repairs(), asyncio.get_running_loop()
            # A context of its own: the retry outlives the write that started it (its trace).
            self._repairs.retrying = loop.create_task(retry, context=contextvars.Context())

    async def _retry_repairs(self) -> None:
        """Repair until a repair started after this session's last record succeeds."""
        while self._repairs.repaired < self._repairs.recorded:
            await asyncio.sleep(min(self._repairs.interval, 1.0))
            try:
                await self.repair()
            except BackendError:
                continue

    async def stop_repairs(self) -> None:
        """Stop the background retry, a repair running aside and a sweep (at close), and
        wait for them, so no call of theirs is left in flight as the stores close; the
        records stay for any session to repair, the prefixes for any to sweep."""
        repairs, restarts = self._repairs, self._repairs.restarts
        tasks = (repairs.retrying, repairs.running, restarts.sweeping)
        repairs.retrying = repairs.running = restarts.sweeping = None
        await stop_tasks(tasks)
