"""What the data types kept as one Redis sorted set per key share: sorted sets and
geo sets (whose scores are geohashes).

``SetManager`` holds their member removal, set deletion, the Redis half of a
write under its claim, the read of one set (the cache, then Redis, then the
fallback's members) and the fills. A subclass says how its sets are read from
the fallback (``_fetch``), which fallback calls remove members and delete a set,
and its own adds and queries.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any, TypeVar

from dbdaora.backends.redis.protocol import Pairs, RedisSide
from dbdaora.exceptions import BackendError, EntityNotFoundError, ValidationError
from dbdaora.managers.base import CORRUPT, DOWN, MISS, M, Unanswered
from dbdaora.managers.read_through import ReadThrough
from dbdaora.meta import CorruptData
from dbdaora.session.cache import NOT_FOUND, NOTHING

T = TypeVar("T")


class SetManager(ReadThrough[M], abc.ABC):
    """A manager of one Redis sorted set per key, each instance one member."""

    __slots__ = ()

    @abc.abstractmethod
    def _fallback_remove(self) -> Callable[..., Awaitable[None]]:
        """The fallback call removing members: ``(meta, name, encoded members)``."""

    @abc.abstractmethod
    def _fallback_delete(self) -> Callable[..., Awaitable[None]]:
        """The fallback call deleting a whole set: ``(meta, name)``."""

    async def remove(self, *args: Any) -> None:
        """Remove members: ``remove(*key_parts, member, ...)``; the fallback first, then Redis."""
        parts, members = self._split(args)
        if not members:
            raise ValidationError(
                f"{self.meta.name}: remove() needs at least one member after the key parts",
                model=self.meta.name,
            )
        meta, session = self.meta, self.session
        name = meta.key_text(parts)
        encoded = meta.encode_members(members)
        token, claimed = await self._claim([meta.marker_key(name)])
        await self._durable(name, self._fallback_remove(), meta, name, encoded)
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            claimed,
            session.memory.remove_members,
            meta.redis_key(name),
            meta.marker_key(name),
            encoded,
            token,
        )

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the whole set: the fallback first, then Redis (and a not-found marker)."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        token, claimed = await self._claim([meta.marker_key(name)])
        await self._durable(name, self._fallback_delete(), meta, name)
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            claimed,
            session.memory.delete,
            meta.redis_key(name),
            meta.marker_key(name),
            token,
            session.ttl(meta),
        )
        if session.cache is not None:
            await session.cache.deleted(meta.model, name)

    async def _durable(self, name: str, call: Callable[..., Awaitable[T]], *args: Any) -> T:
        """One fallback write of the set ``name``; on a failure whose outcome is
        unknown its Redis copy is deleted, on a refusal it is kept (still true).

        Raises:
            BackendError: the fallback failed.
        """
        try:
            return await self.session.durable(call, *args)
        except BackendError as exc:
            await self._drop_copies(exc.unknown & {name})
            raise

    async def _written(
        self,
        name: str,
        claimed: bool,
        call: Callable[..., Awaitable[None]],
        *args: Any,
        **kwargs: Any,
    ) -> None:
        """The Redis half of a write, once the fallback has it, under the write's claim;
        cached answers dropped."""
        meta, session = self.meta, self.session
        session.overtake(meta.model, [name])
        if session.cache is not None:
            await session.cache.forget(meta.model, name)
        keys = [meta.redis_key(name), meta.marker_key(name)]
        await self._under_claim(claimed, keys, call, *args, **kwargs)

    async def _answer(
        self,
        parts: tuple[Any, ...],
        variant: Hashable,
        read: Callable[[RedisSide, bytes], Awaitable[Any]],
        decode: Callable[[Any], Any],
        from_pairs: Callable[[Pairs], Any],
        *,
        probe_empty: bool,
    ) -> Any:
        """One read: the cache, then Redis, then the fallback's members.

        ``read(memory, key)`` makes the one Redis call, and ``decode`` turns its
        answer into the result (or raises ``CorruptData``); ``from_pairs`` makes
        the result from the fallback's members. An empty answer means Redis
        lacks the set, unless ``probe_empty``: then EXISTS tells.
        """
        meta, session = self.meta, self.session
        name = meta.key_text(parts)
        cache = session.cache
        ticket = 0
        if cache is not None:
            cached = await self._cached(name, variant, parts)
            if cached is not NOTHING:
                return cached
            ticket = cache.ticket()
        key = meta.redis_key(name)
        raw = await self._redis(read, session.memory, key)
        if raw is CORRUPT:
            self._corrupt(key, "Redis refused the data (a key of another type)")
        elif raw is not DOWN and not raw:
            held = probe_empty and await self._redis(session.memory.exists, key)
            if held is DOWN:
                raw = DOWN
            elif not held:
                raw = MISS
        if type(raw) is Unanswered:  # cheaper than isinstance on every hit
            answer = raw
        else:
            try:
                answer = decode(raw)
            except CorruptData as exc:
                answer = self._corrupt(key, exc)
        if type(answer) is Unanswered:
            answer = await self._missed(name, parts, variant, answer, from_pairs, ticket)
        else:
            session.stats_for(meta).redis_hits += 1
        if cache is not None:
            await cache.remember(meta.model, name, variant, answer, ticket, key)
        return answer

    async def _missed(
        self,
        name: str,
        parts: tuple[Any, ...],
        variant: Hashable,
        why: Unanswered,
        from_pairs: Callable[[Pairs], Any],
        ticket: int,
    ) -> Any:
        """A read's answer when Redis gave none: from the fallback's members.

        Raises:
            EntityNotFoundError: the set is nowhere (remembered in the cache).
        """
        meta, session = self.meta, self.session
        key = meta.redis_key(name)
        if why is CORRUPT:
            # Read through even if the delete failed: the lease then finds Redis down.
            await self._redis(session.memory.evict, [key])
        stats = session.stats_for(meta)
        stats.misses += 1
        (members,) = await self._load([name], why is not DOWN)
        if members is None:
            stats.not_found += 1
            if session.cache is not None:
                await session.cache.remember(meta.model, name, variant, NOT_FOUND, ticket, key)
            raise EntityNotFoundError(meta.name, parts)
        return from_pairs(_pairs(members))

    def _fills(
        self, found: Sequence[tuple[str, bytes, Any]], token: bytes, ttl: int | None
    ) -> list[Awaitable[None]]:
        meta, session = self.meta, self.session
        fill = session.memory.fill_sorted_set
        return [
            session.redis(fill, meta.redis_key(name), marker, members, token, ttl)
            for name, marker, members in found
        ]


def _pairs(members: list[tuple[str, float]]) -> Pairs:
    """Fallback members as Redis answers them: float scores, whatever the store kept
    (such as 0.27's ints)."""
    return [(member.encode(), float(score)) for member, score in members]
