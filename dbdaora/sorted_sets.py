"""Sorted-set models: one Redis sorted set per key; each instance is one member."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

from dbdaora.backends import zset
from dbdaora.backends.base import Pairs, is_lease
from dbdaora.exceptions import EntityNotFoundError, ValidationError
from dbdaora.manager import M, Manager, lease_token, logger
from dbdaora.meta import CorruptData


class SortedSetManager(Manager[M]):
    """``Model.objects`` of a sorted-set model.

    Reads of a set that neither Redis nor the fallback holds raise
    ``EntityNotFoundError``; a set that exists answers its members, maybe none.
    """

    async def add(self, *entities: M) -> None:
        """Add members (several sets at once is fine): the fallback first, then Redis.

        With ``Meta.max_size``, each set keeps only its highest-scored members.
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
            marker, token = meta.marker_key(name), lease_token()
            # The claim ends readers' leases and lets this writer create the set in
            # Redis only if no other write touched it in between.
            await memory.claim(marker, token)
            created = await session.fallback.add_members(meta, name, pairs, meta.max_size)
            await memory.add_members(
                meta.redis_key(name),
                marker,
                pairs,
                ttl,
                meta.max_size,
                token=token,
                created=created,
            )

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
        name = self.meta.key_text(key_parts)
        size = await self.session.memory.zcard(self.meta.redis_key(name))
        if size:
            return size
        return len(await self._load(key_parts, name))

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the set exists, in Redis or (read through) in the fallback."""
        key_parts = self.meta.key_parts(parts, named)
        name = self.meta.key_text(key_parts)
        if await self.session.memory.exists(self.meta.redis_key(name)):
            return True
        try:
            await self._load(key_parts, name)
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
        await session.fallback.remove_members(meta, name, encoded)
        await session.memory.remove_members(meta.redis_key(name), meta.marker_key(name), encoded)

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the whole set: the fallback first, then Redis (and a not-found marker)."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        await session.fallback.delete(meta, name)
        await session.memory.delete(meta.redis_key(name), meta.marker_key(name), session.ttl(meta))

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
        from_redis: Callable[[Any], Awaitable[Pairs]],
        locally: Callable[[Pairs], Pairs],
    ) -> list[M]:
        """Answer from Redis; on a missing set, from the fallback's members, filling Redis."""
        meta, memory = self.meta, self.session.memory
        name = meta.key_text(parts)
        key = meta.redis_key(name)
        pairs = await from_redis(memory)
        if not pairs and not await memory.exists(key):
            pairs = locally(await self._load(parts, name))
        try:
            return [meta.from_member(parts, member, score) for member, score in pairs]
        except CorruptData as exc:
            logger.warning("corrupt Redis data at %r, reading the fallback: %s", key, exc)
            await memory.evict([key])
            pairs = locally(await self._load(parts, name))
            return [meta.from_member(parts, member, score) for member, score in pairs]

    async def _load(self, parts: tuple[Any, ...], name: str) -> Pairs:
        """The set's members from the fallback, filling Redis where leased."""
        meta, session = self.meta, self.session
        memory = session.memory
        marker = meta.marker_key(name)
        token = lease_token()
        before = (await memory.lease([marker], token))[0]
        if before is not None and not is_lease(before):
            raise EntityNotFoundError(meta.name, parts)
        members = await session.fallback.get_members(meta, name)
        ttl = session.ttl(meta)
        if not members:
            if before is None:
                await memory.fill_missing([marker], token, ttl)
            raise EntityNotFoundError(meta.name, parts)
        if before is None:
            await memory.fill_sorted_set(meta.redis_key(name), marker, members, token, ttl)
        return [(member.encode(), score) for member, score in members]
