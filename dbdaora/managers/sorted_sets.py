"""Sorted-set models: one Redis sorted set per key; each instance is one member."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from dbdaora.backends import zset
from dbdaora.backends.redis.protocol import Pairs
from dbdaora.exceptions import EntityNotFoundError, RedisUnavailableError, ValidationError
from dbdaora.lease import is_lease, lease_token
from dbdaora.managers.base import M, Manager, logger
from dbdaora.meta import CorruptData
from dbdaora.session.cache import NOT_FOUND, NOTHING, WHOLE

MISS: Any = object()


class SortedSetManager(Manager[M]):
    """``Model.objects`` of a sorted-set model.

    Reads of a set that neither Redis nor the fallback holds raise
    ``EntityNotFoundError``; a set that exists answers its members, maybe none.
    """

    async def add(self, *entities: M) -> None:
        """Add members (several sets at once is fine): the fallback first, then Redis.

        With ``Meta.max_size``, each set keeps only its highest-scored members.
        With Redis unreachable the write still succeeds (see ``HashManager.add``).
        """
        meta = self.meta
        groups: dict[str, dict[str, float]] = {}
        for entity in entities:
            meta.check_instance(entity)
            member, score = meta.to_member(entity)
            groups.setdefault(meta.instance_key_text(entity), {})[member] = score
        session = self.session
        ttl = session.ttl(meta)
        memory = session.memory
        for name, members in groups.items():
            pairs = list(members.items())
            key, marker, token = meta.redis_key(name), meta.marker_key(name), lease_token()
            # The claim ends readers' leases and lets this writer create the set in
            # Redis only if no other write touched it in between.
            try:
                await session.redis(memory.claim, marker, token)
            except RedisUnavailableError:
                session.stats_for(meta).errors += 1
            created = await session.durable(
                session.fallback.add_members, meta, name, pairs, meta.max_size
            )
            session.stats_for(meta).fallback_writes += 1
            await self._written(
                name,
                memory.add_members,
                key,
                marker,
                pairs,
                ttl,
                meta.max_size,
                token=token,
                created=created,
            )

    async def replace(
        self, *parts: Any, members: Iterable[tuple[Any, float]], **named: Any
    ) -> None:
        """Replace the whole set with ``members``, (member, score) pairs.

        The fallback first (a delete, then an add of the new members: a reader of
        the fallback alone may find the set absent in between), then Redis in one
        MULTI. With ``Meta.max_size`` only the highest scores are kept; with no
        members the set is deleted. With Redis unreachable the write still
        succeeds (see ``HashManager.add``).

        Raises:
            ValidationError: bad key parts, a member or score that does not fit.
            BackendError: the fallback failed; then Redis is untouched.
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        name = meta.key_text(key_parts)
        pairs = self._checked_pairs(members)
        if not pairs:
            await self.delete(*key_parts)
            return
        if meta.max_size is not None:
            kept = zset.ordered((member.encode(), score) for member, score in pairs)
            pairs = [(member.decode(), score) for member, score in kept[-meta.max_size :]]
        session = self.session
        await session.durable(session.fallback.delete, meta, name)
        await session.durable(session.fallback.add_members, meta, name, pairs, meta.max_size)
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            session.memory.put_sorted_set,
            meta.redis_key(name),
            meta.marker_key(name),
            pairs,
            session.ttl(meta),
        )

    def _checked_pairs(self, members: Iterable[tuple[Any, float]]) -> list[tuple[str, float]]:
        """Members as text with float scores, each checked; a repeated member keeps its last."""
        meta = self.meta
        assert meta.member is not None and meta.score is not None
        checked: dict[str, float] = {}
        for pair in members:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise ValidationError(
                    f"{meta.name}: members are (member, score) pairs, got {pair!r}",
                    model=meta.name,
                    value=pair,
                )
            member, score = pair
            if member is None:
                raise meta.mismatch(meta.member, member)
            if score is None or not meta.score.codec.check(score):
                raise meta.mismatch(meta.score, score)
            text = meta.encode_field(meta.member, member)
            checked[text.decode() if isinstance(text, bytes) else text] = float(score)
        return list(checked.items())

    async def get(self, *parts: Any, **named: Any) -> list[M]:
        """The whole set, ascending by score."""
        return await self.range(*parts, **named)

    async def range(
        self,
        *args: Any,
        reverse: bool = False,
        **named: Any,
    ) -> list[M]:
        """Members by rank: ``range(*key_parts, start=0, stop=-1)``, ZRANGE's inclusive stop.

        ``start`` and ``stop`` follow the key parts, by position or by name.
        """
        bounds = {name: named.pop(name) for name in ("start", "stop") if name in named}
        parts, rest = self._range_args(args, named)
        if len(rest) > 2 or set(bounds) & set(("start", "stop")[: len(rest)]):
            raise ValidationError(
                f"{self.meta.name}: range() takes the key parts, then start and stop once",
                model=self.meta.name,
                value=args,
            )
        bounds.update(zip(("start", "stop"), rest, strict=False))
        start, stop = bounds.get("start", 0), bounds.get("stop", -1)
        for label, value in (("start", start), ("stop", stop)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValidationError(
                    f"{self.meta.name}: {label} must be an int, got {value!r}",
                    model=self.meta.name,
                    field=label,
                    value=value,
                )
        key = self.meta.redis_key(self.meta.key_text(parts))
        return await self._query(
            parts,
            ("range", start, stop, reverse),
            lambda memory: memory.zrange(key, start, stop, reverse=reverse),
            lambda pairs: zset.by_rank(zset.ordered(pairs, reverse=reverse), start, stop),
        )

    async def range_by_score(
        self,
        *parts: Any,
        min: float = -math.inf,  # noqa: A002 - the names ZRANGEBYSCORE users know
        max: float = math.inf,  # noqa: A002
        reverse: bool = False,
        offset: int = 0,
        count: int | None = None,
        **named: Any,
    ) -> list[M]:
        """Members with ``min <= score <= max``, ascending (descending with ``reverse``)."""
        key_parts = self.meta.key_parts(parts, named)
        for label, value in (("min", min), ("max", max)):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValidationError(
                    f"{self.meta.name}: {label} must be a number, got {value!r}",
                    model=self.meta.name,
                    field=label,
                    value=value,
                )
        if offset < 0 or (count is not None and count < 0):
            raise ValidationError(
                f"{self.meta.name}: offset and count must not be negative, "
                f"got offset={offset!r} count={count!r}",
                model=self.meta.name,
                value=(offset, count),
            )
        low, high = float(min), float(max)
        key = self.meta.redis_key(self.meta.key_text(key_parts))
        return await self._query(
            key_parts,
            ("score", low, high, reverse, offset, count),
            lambda memory: memory.zrange_by_score(
                key, low, high, reverse=reverse, offset=offset, count=count
            ),
            lambda pairs: zset.by_score(
                zset.ordered(pairs, reverse=reverse),
                low,
                high,
                reverse=reverse,
                offset=offset,
                count=count,
            ),
        )

    async def count(self, *parts: Any, **named: Any) -> int:
        """How many members the set has (ZCARD)."""
        key_parts = self.meta.key_parts(parts, named)
        session = self.session

        async def ask(memory: Any, key: bytes) -> Any:
            size = await session.redis(memory.zcard, key)
            return size or MISS  # Redis keeps no empty sets

        size: int = await self._answer(key_parts, ("count",), ask, len)
        return size

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the set exists, in Redis or (read through) in the fallback."""
        try:
            await self.count(*parts, **named)
        except EntityNotFoundError:
            return False
        return True

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
        await session.durable(session.fallback.remove_members, meta, name, encoded)
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            session.memory.remove_members,
            meta.redis_key(name),
            meta.marker_key(name),
            encoded,
        )

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the whole set: the fallback first, then Redis (and a not-found marker)."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        await session.durable(session.fallback.delete, meta, name)
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            session.memory.delete,
            meta.redis_key(name),
            meta.marker_key(name),
            session.ttl(meta),
        )
        if session.cache is not None:
            await session.cache.remember(meta.model, name, WHOLE, NOT_FOUND)

    async def _written(
        self, name: str, call: Callable[..., Awaitable[None]], *args: Any, **kwargs: Any
    ) -> None:
        """The Redis half of a write, once the fallback has it; cached answers dropped."""
        meta, session = self.meta, self.session
        if session.cache is not None:
            await session.cache.forget(meta.model, name)
        try:
            await session.redis(call, *args, **kwargs)
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            session.remember_unwritten([meta.redis_key(name), meta.marker_key(name)])

    def _range_args(
        self, args: tuple[Any, ...], named: dict[str, Any]
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Key parts (by position, or all by name) and the positional rest."""
        if named:
            return self.meta.key_parts((), named), args
        return self._split(args)

    async def _query(
        self,
        parts: tuple[Any, ...],
        variant: Hashable,
        from_redis: Callable[[Any], Awaitable[Pairs]],
        locally: Callable[[Pairs], Pairs],
    ) -> list[M]:
        """Members from Redis; for a set Redis lacks, from the fallback, filling Redis."""
        meta = self.meta

        session = self.session

        async def ask(memory: Any, key: bytes) -> Any:
            pairs = await session.redis(from_redis, memory)
            if not pairs and not await session.redis(memory.exists, key):
                return MISS
            return [meta.from_member(parts, member, score) for member, score in pairs]

        def build(pairs: Pairs) -> list[M]:
            return [meta.from_member(parts, member, score) for member, score in locally(pairs)]

        members: list[M] = await self._answer(parts, variant, ask, build)
        return [meta.copy(member) for member in members]

    async def _answer(
        self,
        parts: tuple[Any, ...],
        variant: Hashable,
        ask: Callable[[Any, bytes], Awaitable[Any]],
        from_pairs: Callable[[Pairs], Any],
    ) -> Any:
        """One read: the cache, then Redis (``ask``), then the fallback's members.

        ``ask`` answers from Redis, or ``MISS`` where Redis does not hold the set;
        ``from_pairs`` answers from the fallback's members.
        """
        meta, session = self.meta, self.session
        name = meta.key_text(parts)
        key = meta.redis_key(name)
        stats = session.stats_for(meta)
        cache = session.cache
        if cache is not None:
            cached = await self._cached(name, variant, parts)
            if cached is not NOTHING:
                return cached
        answer: Any = MISS
        redis_up = True
        try:
            answer = await ask(session.memory, key)
        except RedisUnavailableError:
            stats.errors += 1
            redis_up = False
        except CorruptData as exc:
            logger.warning("corrupt Redis data at %r, reading the fallback: %s", key, exc)
            try:
                await session.redis(session.memory.evict, [key])
            except RedisUnavailableError:
                stats.errors += 1
        if answer is not MISS:
            stats.redis_hits += 1
        else:
            stats.misses += 1
            read = self._read_through if redis_up else self._read_fallback
            (pairs,) = await session.coalesce(meta.model, [name], read)
            if pairs is None:
                stats.not_found += 1
                if cache is not None:
                    await cache.remember(meta.model, name, variant, NOT_FOUND)
                raise EntityNotFoundError(meta.name, parts)
            answer = from_pairs(pairs)
        if cache is not None:
            await cache.remember(meta.model, name, variant, answer)
        return answer

    async def _read_through(self, names: list[str]) -> list[Pairs | None]:
        """The set's members from the fallback, filling Redis where this reader holds the lease.

        None where the set is nowhere (a not-found marker answers without the fallback).
        """
        meta, session = self.meta, self.session
        memory = session.memory
        (name,) = names
        marker = meta.marker_key(name)
        token = lease_token()
        try:
            before = (await session.redis(memory.lease, [marker], token))[0]
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            return await self._read_fallback(names)
        if before is not None and not is_lease(before):
            return [None]
        leased = before is None
        members = await session.durable(session.fallback.get_members, meta, name)
        session.stats_for(meta).fallback_reads += 1
        ttl = session.ttl(meta)
        try:
            if not members and leased:
                await session.redis(memory.fill_missing, [marker], token, ttl)
            elif members and leased:
                key = meta.redis_key(name)
                await session.redis(memory.fill_sorted_set, key, marker, members, token, ttl)
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
        return [_pairs(members)]

    async def _read_fallback(self, names: list[str]) -> list[Pairs | None]:
        """The fallback alone, for a request that already found Redis unavailable."""
        meta, session = self.meta, self.session
        (name,) = names
        members = await session.durable(session.fallback.get_members, meta, name)
        session.stats_for(meta).fallback_reads += 1
        return [_pairs(members)]


def _pairs(members: list[tuple[str, float]] | None) -> Pairs | None:
    """Fallback members as Redis answers them (float scores, whatever the store kept,
    such as 0.27's ints); None for a set with none."""
    if not members:
        return None
    return [(member.encode(), float(score)) for member, score in members]
