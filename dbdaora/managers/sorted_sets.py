"""Sorted-set models: one Redis sorted set per key; each instance is one member."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any, TypeVar

from dbdaora.backends import zset
from dbdaora.backends.redis.protocol import Pairs, RedisSide
from dbdaora.exceptions import BackendError, EntityNotFoundError, ValidationError
from dbdaora.managers.base import M
from dbdaora.managers.sets import SetManager

T = TypeVar("T")


class SortedSetManager(SetManager[M]):
    """``Model.objects`` of a sorted-set model.

    Reads of a set that neither Redis nor the fallback holds raise
    ``EntityNotFoundError``; a set that exists answers its members, maybe none.
    """

    __slots__ = ()

    async def add(self, *entities: M) -> None:
        """Add members (several sets at once is fine): the fallback first, then Redis.

        With ``Meta.max_size``, each set keeps only its highest-scored members.
        With Redis unreachable the write still succeeds (see ``HashManager.add``).

        Raises:
            BackendError: the fallback failed; the sets of earlier groups are
                written, a refused set keeps its Redis copy, and one whose outcome
                is unknown (``OutcomeUnknownError``) loses it.
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
            key, marker = meta.redis_key(name), meta.marker_key(name)
            # The claim ends readers' leases and lets this writer touch the set in
            # Redis only if no other write claimed it in between.
            token, claimed = await self._claim([marker])
            created = await self._durable(
                name, session.fallback.add_members, meta, name, pairs, meta.max_size
            )
            session.stats_for(meta).fallback_writes += 1
            await self._written(
                name,
                claimed,
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

        The marker claimed, the fallback (a delete, then an add: a reader of the
        fallback alone may find the set absent in between), then Redis in one
        step under the claim. With ``Meta.max_size`` only the highest scores are kept; with no
        members the set is deleted. With Redis unreachable the write still
        succeeds (see ``HashManager.add``).

        Raises:
            ValidationError: bad key parts, a member or score that does not fit.
            BackendError: the fallback failed. If its delete failed, Redis keeps
                its copy unless the outcome is unknown; if the add after it failed,
                the Redis copy is deleted (the fallback lost the old set).
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
        token, claimed = await self._claim([meta.marker_key(name)])
        await self._durable(name, session.fallback.delete, meta, name)
        try:
            await session.durable(session.fallback.add_members, meta, name, pairs, meta.max_size)
        except BackendError:
            # The delete committed: the Redis copy is older than the fallback either way.
            await self._drop_copies([name])
            raise
        session.stats_for(meta).fallback_writes += 1
        await self._written(
            name,
            claimed,
            session.memory.put_sorted_set,
            meta.redis_key(name),
            meta.marker_key(name),
            pairs,
            token,
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
        return await self._members(
            parts,
            ("range", start, stop, reverse),
            lambda memory, key: memory.zrange(key, start, stop, reverse=reverse),
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
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value != value:
                raise ValidationError(
                    f"{self.meta.name}: {label} must be a number (not NaN), got {value!r}",
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
        return await self._members(
            key_parts,
            ("score", low, high, reverse, offset, count),
            lambda memory, key: memory.zrange_by_score(
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
        size: int = await self._answer(
            self.meta.key_parts(parts, named),
            ("count",),
            lambda memory, key: memory.zcard(key),
            lambda size: size,
            len,
            probe_empty=False,  # Redis keeps no empty sets: no members, no set
        )
        return size

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the set exists, in Redis or (read through) in the fallback."""
        try:
            await self.count(*parts, **named)
        except EntityNotFoundError:
            return False
        return True

    def _range_args(
        self, args: tuple[Any, ...], named: dict[str, Any]
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Key parts (by position, or all by name) and the positional rest."""
        if named:
            return self.meta.key_parts((), named), args
        return self._split(args)

    async def _members(
        self,
        parts: tuple[Any, ...],
        variant: Hashable,
        from_redis: Callable[[RedisSide, bytes], Awaitable[Pairs]],
        locally: Callable[[Pairs], Pairs],
    ) -> list[M]:
        """Members from Redis; for a set Redis lacks, from the fallback, filling Redis."""
        meta = self.meta

        def decode(pairs: Pairs) -> list[M]:
            return [meta.from_member(parts, member, score) for member, score in pairs]

        members: list[M] = await self._answer(
            parts,
            variant,
            from_redis,
            decode,
            lambda pairs: decode(locally(pairs)),
            probe_empty=True,  # an empty range of a set Redis holds is an answer
        )
        return [meta.copy(member) for member in members]

    async def _fetch(self, names: list[str]) -> list[Any]:
        meta, session = self.meta, self.session
        return [
            await session.durable(session.fallback.get_members, meta, name) or None
            for name in names
        ]

    def _fallback_remove(self) -> Callable[..., Awaitable[None]]:
        return self.session.fallback.remove_members

    def _fallback_delete(self) -> Callable[..., Awaitable[None]]:
        return self.session.fallback.delete
