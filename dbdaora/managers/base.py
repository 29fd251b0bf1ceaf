"""What every manager shares: its model and session, cached answers, and outages.

A Redis-side call a manager makes can find Redis unavailable; every one is
answered alike, in one place (python-ndb's ``_handle_transient_errors``):
``_redis`` counts the outage in ``errors`` and returns ``DOWN``, and the caller
carries on with the fallback alone. A key whose data Redis refuses (of another
type: ``BadDataError``) is no outage: ``_redis`` returns ``CORRUPT``, as for a
read that does not decode, and the caller logs and replaces its keys.
"""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Collection, Hashable, Sequence
from typing import Any, ClassVar, Final, Generic, Literal, ParamSpec, Self, TypeVar

from dbdaora.exceptions import (
    BackendError,
    BadDataError,
    EntityNotFoundError,
    RedisUnavailableError,
)
from dbdaora.lease import lease_token
from dbdaora.meta import CorruptData, ModelMeta
from dbdaora.session import ModelStats, Session, default_session, tracing
from dbdaora.session.cache import NOT_FOUND, NOTHING

M = TypeVar("M")
P = ParamSpec("P")
T = TypeVar("T")

logger = logging.getLogger("dbdaora")


class Unanswered(enum.Enum):
    """What a Redis-side read gave instead of data; ``is`` narrows the type.

    ``MISS``: Redis does not hold the record, so it is read through (lease,
    fallback read, fill). ``DOWN``: Redis was unavailable (counted in
    ``errors``), so the fallback answers alone. ``CORRUPT``: Redis holds data
    that does not decode, or a key of another type, so it is dropped and the
    record read through.
    """

    MISS = "Redis does not hold the record"
    DOWN = "Redis is unavailable"
    CORRUPT = "Redis holds data that does not decode"


MISS: Final = Unanswered.MISS
DOWN: Final = Unanswered.DOWN
CORRUPT: Final = Unanswered.CORRUPT


class Manager(Generic[M]):
    """Reads and writes one model through a session (the default one unless ``using``).

    A manager holds no connection, breaker, cache or counter: all of that lives
    in the session, looked up on every call, so one manager serves any session
    and a new default session takes effect at once. It knows the model's
    records; how a store call is bounded, broken or repaired is the session's.
    """

    __slots__ = ("_session", "meta")

    OPERATIONS: ClassVar[tuple[str, ...]] = (
        "get",
        "get_many",
        "add",
        "delete",
        "exists",
        "exists_many",
        "range",
        "range_by_score",
        "count",
        "replace",
        "remove",
    )
    """The public operations a subclass may define: each is traced (``session.tracing``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.OPERATIONS:
            if name in vars(cls):
                setattr(cls, name, tracing.operation(name, vars(cls)[name]))

    def __init__(self, meta: ModelMeta, session: Session | None = None) -> None:
        self.meta = meta
        self._session = session

    @property
    def session(self) -> Session:
        return self._session if self._session is not None else default_session()

    def using(self, session: Session) -> Self:
        """This manager on an explicit session."""
        return type(self)(self.meta, session)

    @property
    def _stats(self) -> ModelStats:
        return self.session.stats_for(self.meta)

    async def _redis(
        self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T | Literal[Unanswered.DOWN, Unanswered.CORRUPT]:
        """``session.redis(call, ...)``; ``DOWN`` with the outage counted, or ``CORRUPT``
        where a key of the call holds data Redis refuses (the caller, which knows
        the keys, logs them with ``_corrupt`` and replaces them)."""
        try:
            return await self.session.redis(call, *args, **kwargs)
        except RedisUnavailableError:
            return self._down()
        except BadDataError:
            return CORRUPT

    async def _claim(self, markers: list[bytes]) -> tuple[bytes, bool]:
        """A write's first step, before its fallback write: claim the markers
        (``dbdaora.lease``) with a new token.

        Returns:
            The token, and False where Redis is unavailable (counted): the
            write's Redis half is then recorded for repair, not tried.
        """
        token = lease_token()
        return token, await self._redis(self.session.memory.claim, markers, token) is not DOWN

    async def _under_claim(
        self,
        claimed: bool,
        keys: list[bytes],
        call: Callable[P, Awaitable[None]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> None:
        """A write's last step, once the fallback has it: ``call`` under the claim.

        Where Redis is unavailable, now or at the claim, ``keys`` are recorded for
        repair; where one of them holds a key of another type, all are dropped
        and the next read fills them.
        """
        session = self.session
        outcome = await self._redis(call, *args, **kwargs) if claimed else DOWN
        if outcome is CORRUPT:
            self._corrupt(keys, "Redis refused the data (a key of another type)")
            outcome = await self._redis(session.memory.evict, keys)
        if outcome is DOWN:
            await session.remember_unwritten(keys)

    def _down(self) -> Literal[Unanswered.DOWN]:
        """Count an outage; ``DOWN``.

        For the few callers that catch ``RedisUnavailableError`` themselves: the
        hash reads (``get``, ``get_many``, ``exists``), where ``_redis`` would add
        a coroutine frame to every hit, and fills sent together, which count one
        outage, not one per write.
        """
        session = self.session
        session.stats_for(self.meta).errors += 1
        if session.cache is not None:
            session.cache.failed()  # invalidations may be lost: nothing cached is sure
        return DOWN

    async def _drop_copies(self, names: Collection[str]) -> None:
        """Delete the Redis copies and cached answers of records a failed fallback write
        may have changed (its ``BackendError.unknown``), so that reads go to the fallback.

        Records the write certainly left alone keep their copies: they are still
        true. With Redis unavailable the keys are remembered, as for any write.
        """
        if not names:
            return
        meta, session = self.meta, self.session
        session.overtake(meta.model, names)
        if session.cache is not None:
            for name in names:
                await session.cache.forget(meta.model, name)
        keys = [key for name in names for key in (meta.redis_key(name), meta.marker_key(name))]
        try:
            await session.redis(session.memory.evict, keys)
        except RedisUnavailableError:
            # Not counted in errors, unlike every other outage: the write this
            # follows fails anyway, with the fallback's BackendError, which a
            # failure to record the keys (kept in memory then) must not replace.
            with contextlib.suppress(BackendError):
                await session.remember_unwritten(keys)

    def _corrupt(
        self, key: bytes | Sequence[bytes], why: CorruptData | BadDataError | str
    ) -> Literal[Unanswered.CORRUPT]:
        """Log data Redis holds that does not decode, or that Redis refuses; ``CORRUPT``.

        ``key`` is the key, or the keys of a call one of which Redis refused.
        """
        logger.warning("corrupt Redis data at %r, reading the fallback: %s", key, why)
        return CORRUPT

    async def _cached(self, name: str, variant: Hashable, parts: tuple[Any, ...]) -> Any:
        """The session cache's answer, or ``NOTHING``; a cached miss raises at once.

        Raises:
            EntityNotFoundError: the cache holds a not-found answer for the key.
        """
        meta, session = self.meta, self.session
        assert session.cache is not None
        cached = await session.cache.lookup(meta.model, name, variant)
        if cached is not NOTHING:
            stats = session.stats_for(meta)
            stats.cache_hits += 1
            if cached is NOT_FOUND:
                stats.not_found += 1
                raise EntityNotFoundError(meta.name, parts)
        return cached

    def _parts_of(self, entity_id: Any) -> tuple[Any, ...]:
        """The key parts of one id of ``get_many``: a value, or a tuple for composite keys."""
        if len(self.meta.key_fields) == 1:
            return (entity_id,)
        parts = entity_id if isinstance(entity_id, tuple) else (entity_id,)
        return self.meta.key_parts(parts, {})

    def _split(self, args: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Leading key parts, then the rest of a positional call."""
        count = len(self.meta.key_fields)
        return self.meta.key_parts(args[:count], {}), tuple(args[count:])
