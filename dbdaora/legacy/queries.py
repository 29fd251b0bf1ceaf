"""0.27's query objects: what ``repository.query(...)`` returns.

A query holds checked key parts and options; its ``entity``, ``entities``,
``exists`` and ``delete`` are awaitables (coroutines, so ``asyncio.run`` takes
them) that call the repository's manager.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from dbdaora.backends import zset
from dbdaora.exceptions import EntityNotFoundError, ValidationError
from dbdaora.managers import FlagManager, HashManager, SortedSetManager
from dbdaora.managers.read_through import ReadThrough
from dbdaora.meta import ModelMeta

E = TypeVar("E")


class HashSource(Protocol[E]):
    """What a hash query needs of its repository (a ``HashRepository``)."""

    manager: HashManager[E]
    key_attrs: ClassVar[Sequence[str]]
    optional_keys: ClassVar[frozenset[str] | None]

    def entity_out(self, entity: Any) -> Any: ...


class BooleanSource(Protocol):
    """What a boolean query needs of its repository (a ``BooleanRepository``)."""

    manager: FlagManager[Any]
    key_attrs: ClassVar[Sequence[str]]


class SortedSetSource(Protocol):
    """What a sorted-set query needs of its repository (a ``SortedSetRepository``)."""

    manager: SortedSetManager[Any]
    key_attrs: ClassVar[Sequence[str]]
    entity_cls: ClassVar[type]


def key_parts(
    meta: ModelMeta, key_attrs: Sequence[str], args: Sequence[Any], named: dict[str, Any]
) -> tuple[Any, ...]:
    """The key parts of a query, as 0.27 took them: each key attribute by name, or else
    from the positional arguments in turn.

    Raises:
        ValidationError: a key part is missing, or an argument is left over.
    """
    if not named and len(args) == len(key_attrs):
        return tuple(args)
    parts = []
    rest = list(args)
    for attr in key_attrs:
        if attr in named:
            parts.append(named[attr])
        elif rest:
            parts.append(rest.pop(0))
        else:
            raise ValidationError(
                f"{meta.name}: missing key part {attr!r} of {list(key_attrs)}",
                model=meta.name,
                field=attr,
            )
    unknown = sorted(set(named) - set(key_attrs))
    if rest or unknown:
        raise ValidationError(
            f"{meta.name}: unexpected query arguments {rest + unknown}; "
            f"the key attributes are {list(key_attrs)}",
            model=meta.name,
            value=rest or unknown,
        )
    return tuple(parts)


def many_key_parts(
    meta: ModelMeta,
    key_attrs: Sequence[str],
    many: Sequence[Any],
    args: Sequence[Any],
    named: dict[str, Any],
) -> list[tuple[Any, ...]]:
    """The key parts of each item of ``many=``: a value is the last key attribute, a
    tuple the last ones; the query's other arguments give the leading ones."""
    if isinstance(many, (str, bytes)):
        raise ValidationError(
            f"{meta.name}: many= takes a list of ids, got {many!r}", model=meta.name, value=many
        )
    found = []
    for item in many:
        values = item if isinstance(item, tuple) else (item,)
        if len(values) > len(key_attrs):
            raise ValidationError(
                f"{meta.name}: {item!r} has more parts than the key attributes {list(key_attrs)}",
                model=meta.name,
                value=item,
            )
        trailing = dict(zip(key_attrs[len(key_attrs) - len(values) :], values, strict=True))
        found.append(key_parts(meta, key_attrs, args, {**named, **trailing}))
    return found


def _projected(manager: HashManager[Any], record: Any, parts: tuple[Any, ...], fields: Any) -> Any:
    """A fallback record cut down to ``fields`` (None stays None)."""
    if record is None or fields is None:
        return record
    return manager.meta.project(record, manager.meta.select(fields), parts)


class HashQuery(Generic[E]):
    """One hash entity, by key; ``fields=`` reads only those fields.

    With ``memory=False`` (0.27's option) ``entity`` and ``exists`` read the
    fallback alone: Redis is neither read nor filled. ``delete`` is the same
    either way: the fallback, then Redis under the writer's claim.
    """

    def __init__(
        self,
        repository: HashSource[E],
        parts: tuple[Any, ...],
        fields: Sequence[str] | None,
        memory: bool = True,
    ) -> None:
        self.repository = repository
        self.key_parts = parts
        self.fields = fields
        self.memory = memory

    @property
    def entity(self) -> Coroutine[Any, Any, E]:
        """The entity; raises ``EntityNotFoundError`` where there is none."""
        if self.memory and self.repository.optional_keys is None:
            return self.repository.manager.get(*self.key_parts, fields=self.fields)
        return self._entity()

    async def _entity(self) -> E:
        found = await (
            self.repository.manager.get(*self.key_parts, fields=self.fields)
            if self.memory
            else self._from_fallback()
        )
        entity: E = self.repository.entity_out(found)
        return entity

    async def _from_fallback(self) -> E:
        manager = self.repository.manager
        if self.fields is not None:
            manager.meta.select(self.fields)  # bad field names fail before any I/O
        (record,) = await manager.fallback_records([self.key_parts])
        if record is None:
            raise EntityNotFoundError(manager.meta.name, self.key_parts)
        entity: E = _projected(manager, record, self.key_parts, self.fields)
        return entity

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        if self.memory:
            return self.repository.manager.exists(*self.key_parts)
        return _fallback_has(self.repository.manager, self.key_parts)

    @property
    def delete(self) -> Coroutine[Any, Any, None]:
        return self.repository.manager.delete(*self.key_parts)


class HashQueryMany(Generic[E]):
    """Several hash entities; ``entities`` yields the ones found, in the order asked."""

    def __init__(
        self,
        repository: HashSource[E],
        many: list[tuple[Any, ...]],
        fields: Sequence[str] | None,
        memory: bool = True,
    ) -> None:
        self.repository = repository
        self.many_key_parts = many
        self.fields = fields
        self.memory = memory

    @property
    def entities(self) -> AsyncIterator[E]:
        return self._found()

    async def _found(self) -> AsyncIterator[E]:
        for entity in await self._read():
            yield self.repository.entity_out(entity)

    async def _read(self) -> list[Any]:
        manager = self.repository.manager
        if self.memory:
            single = len(self.repository.key_attrs) == 1
            ids = [parts[0] if single else parts for parts in self.many_key_parts]
            return await manager.get_many(ids, fields=self.fields)
        if self.fields is not None:
            manager.meta.select(self.fields)  # bad field names fail before any I/O
        records = await manager.fallback_records(self.many_key_parts)
        return [
            _projected(manager, record, parts, self.fields)
            for parts, record in zip(self.many_key_parts, records, strict=True)
            if record is not None
        ]


async def _fallback_has(manager: ReadThrough[Any], parts: tuple[Any, ...]) -> bool:
    """Whether the fallback alone has a record under the key parts."""
    (record,) = await manager.fallback_records([parts])
    return record is not None


def _positive_or_none(meta: ModelMeta, label: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValidationError(
            f"{meta.name}: {label} must be a positive int or None, got {value!r}",
            model=meta.name,
            field=label,
            value=value,
        )


class SortedSetQuery(Generic[E]):
    """One sorted set, by key, with 0.27's options.

    ``min_score``/``max_score`` select by score (``page`` is then ignored, as in
    0.27); otherwise ``page``/``page_size`` select by rank. ``reverse`` orders
    by descending score. An empty answer raises ``EntityNotFoundError``. With
    ``memory=False`` the fallback's set alone answers (Redis neither read nor filled).
    """

    def __init__(
        self,
        repository: SortedSetSource,
        parts: tuple[Any, ...],
        *,
        reverse: bool = False,
        withscores: bool = False,
        page: int | None = None,
        page_size: int | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        withmaxsize: bool = False,
        memory: bool = True,
    ) -> None:
        meta = repository.manager.meta
        _positive_or_none(meta, "page", page)
        _positive_or_none(meta, "page_size", page_size)
        self.repository = repository
        self.key_parts = parts
        self.reverse = reverse
        self.withscores = withscores
        self.page = page
        self.page_size = page_size
        self.min_score = min_score
        self.max_score = max_score
        self.withmaxsize = withmaxsize
        self.memory = memory

    def rank_range(self) -> tuple[int, int]:
        """The inclusive rank range of ``page`` (counted from 1) of ``page_size`` members."""
        if not self.page_size:
            return 0, -1
        page = self.page or 1
        return (page - 1) * self.page_size, page * self.page_size - 1

    @property
    def entity(self) -> Coroutine[Any, Any, E]:
        return self._entity()

    def _by_score(self) -> tuple[float, float] | None:
        if self.min_score is None and self.max_score is None:
            return None
        return (
            -math.inf if self.min_score is None else self.min_score,
            math.inf if self.max_score is None else self.max_score,
        )

    async def _from_redis(self) -> tuple[zset.Pairs, int | None]:
        manager = self.repository.manager
        parts = self.key_parts
        scores = self._by_score()
        if scores is not None:
            low, high = scores
            members = await manager.range_by_score(*parts, min=low, max=high, reverse=self.reverse)
        else:
            start, stop = self.rank_range()
            members = await manager.range(*parts, start, stop, reverse=self.reverse)
        size = await manager.count(*parts) if self.withmaxsize and members else None
        return [(member.member.encode(), member.score) for member in members], size

    async def _from_fallback(self) -> tuple[zset.Pairs, int | None]:
        (record,) = await self.repository.manager.fallback_records([self.key_parts])
        pairs = zset.ordered(
            ((member.encode(), float(score)) for member, score in record or ()),
            reverse=self.reverse,
        )
        scores = self._by_score()
        if scores is not None:
            found = zset.by_score(pairs, *scores, reverse=self.reverse, offset=0, count=None)
        else:
            found = zset.by_rank(pairs, *self.rank_range())
        return found, len(pairs) if self.withmaxsize else None

    async def _entity(self) -> E:
        pairs, size = await (self._from_redis() if self.memory else self._from_fallback())
        if not pairs:
            raise EntityNotFoundError(self.repository.manager.meta.name, self.key_parts)
        parts = self.key_parts
        data: list[Any] = pairs if self.withscores else [member for member, _ in pairs]
        keys = dict(zip(self.repository.key_attrs, parts, strict=True))
        entity: E = self.repository.entity_cls(**keys, data=data, max_size=size)
        return entity

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        if self.memory:
            return self.repository.manager.exists(*self.key_parts)
        return _fallback_has(self.repository.manager, self.key_parts)

    @property
    def delete(self) -> Coroutine[Any, Any, None]:
        return self.repository.manager.delete(*self.key_parts)


class SortedSetQueryMany(Generic[E]):
    """Several sorted sets with the same options; ``entities`` yields the ones found."""

    def __init__(self, queries: list[SortedSetQuery[E]]) -> None:
        self.queries = queries

    @property
    def entities(self) -> AsyncIterator[E]:
        return self._found()

    async def _found(self) -> AsyncIterator[E]:
        for query in self.queries:
            try:
                yield await query.entity
            except EntityNotFoundError:
                continue


class BooleanQuery:
    """One flag, by key. As in 0.27, its ``entity`` is the last key part, where set."""

    def __init__(
        self, repository: BooleanSource, parts: tuple[Any, ...], memory: bool = True
    ) -> None:
        self.repository = repository
        self.key_parts = parts
        self.memory = memory

    @property
    def entity(self) -> Coroutine[Any, Any, Any]:
        """The last key part; raises ``EntityNotFoundError`` where the flag is not set."""
        return self._entity()

    async def _entity(self) -> Any:
        manager = self.repository.manager
        if self.memory:
            await manager.get(*self.key_parts)
        elif not await _fallback_has(manager, self.key_parts):
            raise EntityNotFoundError(manager.meta.name, self.key_parts)
        return self.key_parts[-1]

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        if self.memory:
            return self.repository.manager.exists(*self.key_parts)
        return _fallback_has(self.repository.manager, self.key_parts)

    @property
    def delete(self) -> Coroutine[Any, Any, None]:
        return self.repository.manager.delete(*self.key_parts)


class BooleanQueryMany:
    """Several flags; ``entities`` yields the last key part of each set one, in order."""

    def __init__(
        self, repository: BooleanSource, many: list[tuple[Any, ...]], memory: bool = True
    ) -> None:
        self.repository = repository
        self.many_key_parts = many
        self.memory = memory

    @property
    def entities(self) -> AsyncIterator[Any]:
        return self._found()

    async def _found(self) -> AsyncIterator[Any]:
        single = len(self.repository.key_attrs) == 1
        ids = [parts[0] if single else parts for parts in self.many_key_parts]
        manager = self.repository.manager
        flags = (
            await manager.exists_many(ids)
            if self.memory
            else [
                record is not None for record in await manager.fallback_records(self.many_key_parts)
            ]
        )
        for parts, set_ in zip(self.many_key_parts, flags, strict=True):
            if set_:
                yield parts[-1]
