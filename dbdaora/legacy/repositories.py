"""0.27's repositories: ``HashRepository[Entity, KeyType]``, ``SortedSetRepository[...]``,
``BooleanRepository[...]`` (and its ``DatastoreBooleanRepository`` name).

Each repository class compiles its entity once, at class creation, into a
``ModelMeta`` (see ``dbdaora.legacy.entities``), keyed by the repository's
``name`` (default: the class name in snake_case, ``_repository`` removed, as in
0.27). Each instance reads and writes through a manager on a ``Session`` of its
own, so storage, key layout, caching and breaking are the core's.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

from dbdaora.backends.fallback.protocol import FallbackStore
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.exceptions import ConfigurationError, ValidationError
from dbdaora.legacy.entities import (
    flag_meta,
    hash_meta,
    repository_key_name,
    sorted_set_meta,
    typed_dict_model,
)
from dbdaora.legacy.queries import (
    BooleanQuery,
    BooleanQueryMany,
    HashQuery,
    HashQueryMany,
    SortedSetQuery,
    SortedSetQueryMany,
    key_parts,
    many_key_parts,
)
from dbdaora.managers.flags import FlagManager
from dbdaora.managers.hashes import HashManager
from dbdaora.managers.sorted_sets import SortedSetManager
from dbdaora.meta import ModelMeta
from dbdaora.session import Session

E = TypeVar("E")
K = TypeVar("K")


def _entity_argument(cls: type) -> type | None:
    """The entity class given as the first type argument of a repository base."""
    for base in vars(cls).get("__orig_bases__", ()):
        args = typing.get_args(base)
        if args and isinstance(args[0], type):
            return args[0]
    return None


class Repository(Generic[E, K]):
    """What the hash and sorted-set repositories share.

    Class attributes (all optional): ``entity_cls`` (else the first type
    argument), ``name`` (the key name), ``id_name`` (the key attribute a
    service's ``get_one(id)`` fills, ``"id"``), ``key_attrs`` (``(id_name,)``).

    Args:
        memory_data_source: the Redis side: a store (``DictMemoryDataSource()``,
            ``await make_redis_data_source(url)``) or its URL.
        fallback_data_source: the durable side: a store
            (``DictFallbackDataSource()``) or its URL.
        expire_time: seconds a Redis copy lives (None: no expiry).
        timeout: seconds each Redis call may take (None: no bound).
        cache: the session's cache options (``Session(cache=...)``); None: none.
        breaker: the session's circuit-breaker options; None (the default): none.

    Every ``add`` takes 0.27's ``memory=`` and ``memory_always=`` and writes the
    same way whatever they say: the fallback first, then Redis under the writer's
    claim. 0.27 wrote the fallback alone with ``memory=False`` (leaving an older
    Redis copy to be served) and, by default, wrote Redis only where the key was
    already there; here Redis is always written, so no reader sees an old copy.
    """

    entity_cls: ClassVar[type]
    name: ClassVar[str]
    id_name: ClassVar[str] = "id"
    key_attrs: ClassVar[Sequence[str]]
    meta: ClassVar[ModelMeta]

    def __init_subclass__(cls, entity_cls: type | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if entity_cls is not None:  # 0.27's class keyword: ``class R(Base, entity_cls=E)``
            cls.entity_cls = entity_cls
        entity = vars(cls).get("entity_cls") or _entity_argument(cls)
        entity = entity or getattr(cls, "entity_cls", None)
        if entity is None:
            return  # a generic intermediate base: its subclasses name the entity
        cls.entity_cls = entity
        cls.name = getattr(cls, "name", None) or repository_key_name(cls)
        cls.key_attrs = tuple(getattr(cls, "key_attrs", None) or (cls.id_name,))
        cls.meta = cls._compile(entity)

    @classmethod
    def _compile(cls, entity: type) -> ModelMeta:
        raise NotImplementedError  # each repository kind compiles its own

    def __init__(
        self,
        memory_data_source: RedisSide | str,
        fallback_data_source: FallbackStore | str,
        expire_time: int | None,
        *,
        timeout: float | None = 1.0,
        cache: dict[str, Any] | None = None,
        breaker: dict[str, Any] | None = None,
    ) -> None:
        if getattr(type(self), "meta", None) is None:
            raise ConfigurationError(
                f"{type(self).__name__} names no entity: subclass it as "
                f"{type(self).__name__}[Entity, KeyType] or set entity_cls"
            )
        self.session = Session(
            memory=memory_data_source,
            fallback=fallback_data_source,
            expire_time=expire_time,
            cache=cache,
            breaker=breaker,
            memory_timeout=timeout,
        )
        self.memory_data_source = self.session.memory
        self.fallback_data_source = self.session.fallback
        self.expire_time = expire_time

    def _parts(self, args: Sequence[Any], named: dict[str, Any]) -> tuple[Any, ...]:
        return key_parts(self.meta, self.key_attrs, args, named)

    def _many(
        self, many: Sequence[Any], args: Sequence[Any], named: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        return many_key_parts(self.meta, self.key_attrs, many, args, named)

    async def close(self) -> None:
        """Close the connections of the repository's stores."""
        await self.session.close()


class HashRepository(Repository[E, K]):
    """0.27's hash repository: one entity per Redis hash.

    The entity is a dataclass, or a TypedDict: then reads answer dicts and writes
    take them, and a key the TypedDict does not require may be left out (it reads
    back left out).
    """

    manager: HashManager[E]
    optional_keys: ClassVar[frozenset[str] | None] = None  # a TypedDict's; None: a dataclass

    @classmethod
    def _compile(cls, entity: type) -> ModelMeta:
        cls.optional_keys = None
        if typing.is_typeddict(entity):
            entity, cls.optional_keys = typed_dict_model(entity, cls.key_attrs, cls.__name__)
        return hash_meta(entity, cls.key_attrs, cls.name, cls.__name__)

    def entity_out(self, entity: Any) -> Any:
        """A read entity as the caller's entity type: a dict for a TypedDict."""
        optional = self.optional_keys
        if optional is None:
            return entity
        return {
            name: value
            for name, value in vars(entity).items()
            if value is not None or name not in optional
        }

    def _entity_in(self, entity: Any) -> Any:
        """An entity to write, as the stored model: a TypedDict's dict converted."""
        if self.optional_keys is None:
            return entity
        fields = {field.name for field in dataclasses.fields(self.meta.model)}
        if not isinstance(entity, dict) or not set(entity) <= fields:
            raise ValidationError(
                f"{self.meta.name}: expected a {self.entity_cls.__name__} dict of "
                f"{sorted(fields)}, got {entity!r}",
                model=self.meta.name,
                value=entity,
            )
        try:
            return self.meta.model(**entity)
        except TypeError as exc:  # a required key is missing
            raise ValidationError(
                f"{self.meta.name}: {exc}", model=self.meta.name, value=entity
            ) from exc

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager = HashManager(self.meta, self.session)

    @overload
    def query(
        self,
        *args: Any,
        many: None = None,
        fields: Sequence[str] | None = None,
        memory: bool = True,
        **key_attrs: Any,
    ) -> HashQuery[E]: ...

    @overload
    def query(
        self,
        *args: Any,
        many: Sequence[Any],
        fields: Sequence[str] | None = None,
        memory: bool = True,
        **key_attrs: Any,
    ) -> HashQueryMany[E]: ...

    def query(
        self,
        *args: Any,
        many: Sequence[Any] | None = None,
        fields: Sequence[str] | None = None,
        memory: bool = True,
        **key_attrs: Any,
    ) -> HashQuery[E] | HashQueryMany[E]:
        """A query of one entity (key parts by position or by key attribute), or of
        several with ``many=[id, ...]`` (ids are values, or tuples of key parts)."""
        if many is not None:
            return HashQueryMany(self, self._many(many, args, key_attrs), fields, memory)
        return HashQuery(self, self._parts(args, key_attrs), fields, memory)

    async def add(
        self, entity: E, *entities: E, memory: bool = True, memory_always: bool = True
    ) -> None:
        """Write entities: the fallback first, then Redis (see ``Repository.add``)."""
        await self.manager.add(*(self._entity_in(each) for each in (entity, *entities)))


class BooleanRepository(Repository[E, K]):
    """0.27's boolean repository: one flag per key, set by ``add``, cleared by ``delete``.

    The entity is any dataclass holding the key attributes; only they are stored
    (Redis ``1``, ``0`` for a remembered miss; a fallback record ``{"value": true}``).
    A query's ``entity``, as in 0.27, is the last key part where the flag is set.
    """

    manager: FlagManager[Any]

    @classmethod
    def _compile(cls, entity: type) -> ModelMeta:
        return flag_meta(entity, cls.key_attrs, cls.name, cls.__name__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager = FlagManager(self.meta, self.session)

    @overload
    def query(
        self, *args: Any, many: None = None, memory: bool = True, **key_attrs: Any
    ) -> BooleanQuery: ...

    @overload
    def query(
        self, *args: Any, many: Sequence[Any], memory: bool = True, **key_attrs: Any
    ) -> BooleanQueryMany: ...

    def query(
        self,
        *args: Any,
        many: Sequence[Any] | None = None,
        memory: bool = True,
        **key_attrs: Any,
    ) -> BooleanQuery | BooleanQueryMany:
        """A query of one flag (key parts by position or by key attribute), or of several
        with ``many=[id, ...]``."""
        if many is not None:
            return BooleanQueryMany(self, self._many(many, args, key_attrs), memory)
        return BooleanQuery(self, self._parts(args, key_attrs), memory)

    async def add(
        self, entity: E, *entities: E, memory: bool = True, memory_always: bool = True
    ) -> None:
        """Set each entity's flag (its key attributes): the fallback first, then Redis
        (see ``Repository.add``)."""
        flags = []
        for each in (entity, *entities):
            if not isinstance(each, self.entity_cls):
                raise ValidationError(
                    f"{self.meta.name}: expected a {self.entity_cls.__name__} instance, "
                    f"got {each!r}",
                    model=self.meta.name,
                    value=each,
                )
            flags.append(self.meta.flag_entity([getattr(each, attr) for attr in self.key_attrs]))
        await self.manager.add(*flags)


class DatastoreBooleanRepository(BooleanRepository[E, K]):
    """0.27's name for a boolean repository on Datastore: the ``datastore://`` fallback
    already stores each flag as 0.27 did (``{"value": true}``, unindexed)."""


class SortedSetRepository(Repository[E, K]):
    """0.27's sorted-set repository: one ``SortedSetEntity`` per Redis sorted set."""

    manager: SortedSetManager[Any]

    @classmethod
    def _compile(cls, entity: type) -> ModelMeta:
        return sorted_set_meta(entity, cls.key_attrs, cls.name, cls.__name__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager = SortedSetManager(self.meta, self.session)

    @overload
    def query(
        self,
        *args: Any,
        many: None = None,
        reverse: bool = False,
        withscores: bool = False,
        page: int | None = None,
        page_size: int | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        withmaxsize: bool = False,
        memory: bool = True,
        **key_attrs: Any,
    ) -> SortedSetQuery[E]: ...

    @overload
    def query(
        self,
        *args: Any,
        many: Sequence[Any],
        reverse: bool = False,
        withscores: bool = False,
        page: int | None = None,
        page_size: int | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        withmaxsize: bool = False,
        memory: bool = True,
        **key_attrs: Any,
    ) -> SortedSetQueryMany[E]: ...

    def query(
        self,
        *args: Any,
        many: Sequence[Any] | None = None,
        reverse: bool = False,
        withscores: bool = False,
        page: int | None = None,
        page_size: int | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        withmaxsize: bool = False,
        memory: bool = True,
        **key_attrs: Any,
    ) -> SortedSetQuery[E] | SortedSetQueryMany[E]:
        """A query of one set (see ``SortedSetQuery`` for the options), or of several
        with ``many=[id, ...]``."""
        options: dict[str, Any] = {
            "reverse": reverse,
            "withscores": withscores,
            "page": page,
            "page_size": page_size,
            "min_score": min_score,
            "max_score": max_score,
            "withmaxsize": withmaxsize,
            "memory": memory,
        }
        if many is not None:
            return SortedSetQueryMany(
                [
                    SortedSetQuery(self, parts, **options)
                    for parts in self._many(many, args, key_attrs)
                ]
            )
        return SortedSetQuery(self, self._parts(args, key_attrs), **options)

    def _entity_parts(self, entity: Any) -> tuple[Any, ...]:
        if type(entity) is not self.entity_cls:
            raise ValidationError(
                f"{self.meta.name}: expected a {self.entity_cls.__name__} instance, got {entity!r}",
                model=self.meta.name,
                value=entity,
            )
        return tuple(getattr(entity, attr) for attr in self.key_attrs)

    async def add(
        self, entity: E, *entities: E, memory: bool = True, memory_always: bool = True
    ) -> None:
        """Replace each entity's whole set with its ``data``, (member, score) pairs
        (members as text or UTF-8 bytes): the fallback first, then Redis (see
        ``Repository.add``)."""
        for each in (entity, *entities):
            parts = self._entity_parts(each)
            members = [_member_pair(self.meta, pair) for pair in getattr(each, "data", None) or ()]
            await self.manager.replace(*parts, members=members)


def _member_pair(meta: ModelMeta, pair: Any) -> Any:
    """A (member, score) pair, its member made text where it was read back as bytes."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        return pair  # replace() names what is wrong with it
    member, score = pair
    if isinstance(member, bytes):
        try:
            member = member.decode()
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{meta.name}: a member must be UTF-8 text, got {member!r}",
                model=meta.name,
                value=pair,
            ) from exc
    return member, score
