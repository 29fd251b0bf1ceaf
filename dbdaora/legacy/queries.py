"""0.27's query objects: what ``repository.query(...)`` returns.

A query holds checked key parts and options; its ``entity``, ``entities``,
``exists`` and ``delete`` are awaitables (coroutines, so ``asyncio.run`` takes
them) that call the repository's manager.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from dbdaora.exceptions import EntityNotFoundError, ValidationError
from dbdaora.managers import FlagManager, HashManager, SortedSetManager
from dbdaora.meta import ModelMeta

E = TypeVar("E")


class HashSource(Protocol[E]):
    """What a hash query needs of its repository (a ``HashRepository``)."""

    manager: HashManager[E]
    key_attrs: ClassVar[Sequence[str]]


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


class HashQuery(Generic[E]):
    """One hash entity, by key; ``fields=`` reads only those fields."""

    def __init__(
        self,
        repository: HashSource[E],
        parts: tuple[Any, ...],
        fields: Sequence[str] | None,
    ) -> None:
        self.repository = repository
        self.key_parts = parts
        self.fields = fields

    @property
    def entity(self) -> Coroutine[Any, Any, E]:
        """The entity; raises ``EntityNotFoundError`` where there is none."""
        return self.repository.manager.get(*self.key_parts, fields=self.fields)

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        return self.repository.manager.exists(*self.key_parts)

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
    ) -> None:
        self.repository = repository
        self.many_key_parts = many
        self.fields = fields

    @property
    def entities(self) -> AsyncIterator[E]:
        return self._found()

    async def _found(self) -> AsyncIterator[E]:
        single = len(self.repository.key_attrs) == 1
        ids = [parts[0] if single else parts for parts in self.many_key_parts]
        for entity in await self.repository.manager.get_many(ids, fields=self.fields):
            yield entity


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
    by descending score. An empty answer raises ``EntityNotFoundError``.
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

    def rank_range(self) -> tuple[int, int]:
        """The inclusive rank range of ``page`` (counted from 1) of ``page_size`` members."""
        if not self.page_size:
            return 0, -1
        page = self.page or 1
        return (page - 1) * self.page_size, page * self.page_size - 1

    @property
    def entity(self) -> Coroutine[Any, Any, E]:
        return self._entity()

    async def _entity(self) -> E:
        manager = self.repository.manager
        parts = self.key_parts
        if self.min_score is not None or self.max_score is not None:
            members = await manager.range_by_score(
                *parts,
                min=-math.inf if self.min_score is None else self.min_score,
                max=math.inf if self.max_score is None else self.max_score,
                reverse=self.reverse,
            )
        else:
            start, stop = self.rank_range()
            members = await manager.range(*parts, start, stop, reverse=self.reverse)
        if not members:
            raise EntityNotFoundError(manager.meta.name, parts)
        size = await manager.count(*parts) if self.withmaxsize else None
        data: list[Any] = (
            [(member.member.encode(), member.score) for member in members]
            if self.withscores
            else [member.member.encode() for member in members]
        )
        keys = dict(zip(self.repository.key_attrs, parts, strict=True))
        entity: E = self.repository.entity_cls(**keys, data=data, max_size=size)
        return entity

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        return self.repository.manager.exists(*self.key_parts)

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

    def __init__(self, repository: BooleanSource, parts: tuple[Any, ...]) -> None:
        self.repository = repository
        self.key_parts = parts

    @property
    def entity(self) -> Coroutine[Any, Any, Any]:
        """The last key part; raises ``EntityNotFoundError`` where the flag is not set."""
        return self._entity()

    async def _entity(self) -> Any:
        await self.repository.manager.get(*self.key_parts)
        return self.key_parts[-1]

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        return self.repository.manager.exists(*self.key_parts)

    @property
    def delete(self) -> Coroutine[Any, Any, None]:
        return self.repository.manager.delete(*self.key_parts)


class BooleanQueryMany:
    """Several flags; ``entities`` yields the last key part of each set one, in order."""

    def __init__(self, repository: BooleanSource, many: list[tuple[Any, ...]]) -> None:
        self.repository = repository
        self.many_key_parts = many

    @property
    def entities(self) -> AsyncIterator[Any]:
        return self._found()

    async def _found(self) -> AsyncIterator[Any]:
        single = len(self.repository.key_attrs) == 1
        ids = [parts[0] if single else parts for parts in self.many_key_parts]
        flags = await self.repository.manager.exists_many(ids)
        for parts, set_ in zip(self.many_key_parts, flags, strict=True):
            if set_:
                yield parts[-1]
