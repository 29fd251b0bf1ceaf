"""dbdaora 0.27's geospatial API: repository, query, entity, service, over ``GeoManager``.

A 0.27 geospatial entity is a dataclass of key attributes and ``data``: one
``GeoMember`` with its ``coord`` to add, or the list of them a radius query
answers. It is mapped onto a member model (its key attributes, a
``GeoMember()``, a ``Latitude()`` and a ``Longitude()``), one instance per
member, as a declared geospatial model is; 0.27's Redis keys (``name:key
parts``) and GEOADD scores read unchanged.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, ClassVar, TypeVar, Unpack

from dbdaora.backends.fallback.protocol import FallbackStore
from dbdaora.backends.redis.protocol import RedisSide
from dbdaora.exceptions import ConfigurationError, EntityNotFoundError, ValidationError
from dbdaora.fields import GeoMember, GeoPoint, Key, Latitude, Longitude
from dbdaora.legacy.entities import _hints
from dbdaora.legacy.queries import key_parts
from dbdaora.legacy.repositories import Repository
from dbdaora.legacy.services import LegacyServiceOptions, Service, _build
from dbdaora.managers.geo import GeoManager
from dbdaora.meta import ModelMeta, compile_meta

E = TypeVar("E")
K = TypeVar("K")

DATA = "data"
MEMBER, LATITUDE, LONGITUDE = "member", "latitude", "longitude"
QUERY_OPTIONS = (
    "type",
    "latitude",
    "longitude",
    "max_distance",
    "distance_unit",
    "with_dist",
    "with_coord",
    "count",
)


@typing.dataclass_transform()
class GeoSpatialEntity:
    """Base of 0.27 geospatial entities: a subclass declares its key fields (``id: str``
    when it declares none) and becomes a dataclass of them, then ``data``."""

    data: Any

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = {
            name: annotation
            for name, annotation in vars(cls).get("__annotations__", {}).items()
            if name != DATA
        }
        cls.__annotations__ = {**(own or {"id": str}), DATA: Any}
        dataclasses.dataclass(cls)


def geo_meta(entity: type, key_attrs: Sequence[str], key_name: str, repository: str) -> ModelMeta:
    """The compiled metadata of the member model of a 0.27 geospatial entity."""
    hints = _hints(entity, key_attrs, repository)
    if DATA not in hints or {DATA, MEMBER, LATITUDE, LONGITUDE} & set(key_attrs):
        raise ConfigurationError(
            f"{repository}: entity {entity.__name__} needs a data field, and key_attrs "
            f"cannot use the names {DATA}, {MEMBER}, {LATITUDE}, {LONGITUDE}",
            model=entity.__name__,
        )
    declared: dict[str, tuple[Any, Any]] = {attr: (hints[attr], Key()) for attr in key_attrs}
    declared[MEMBER] = (str, GeoMember())
    declared[LATITUDE] = (float, Latitude())
    declared[LONGITUDE] = (float, Longitude())
    member_model = dataclasses.make_dataclass(
        entity.__name__, [(name, annotation) for name, (annotation, _) in declared.items()]
    )
    member_model.__module__ = entity.__module__
    return compile_meta(member_model, declared, {"key_name": key_name})


class GeoSpatialQuery:
    """A radius query of one geo set, with 0.27's options.

    ``latitude``, ``longitude`` and ``max_distance`` (in ``distance_unit``) are
    required; ``entity`` answers the entity whose ``data`` lists a ``GeoMember``
    per member found, nearest first (``dist`` and ``coord`` as ``with_dist`` and
    ``with_coord`` ask), or raises ``EntityNotFoundError`` where none is.
    """

    def __init__(
        self,
        repository: GeoSpatialRepository[Any, Any],
        parts: tuple[Any, ...],
        *,
        type: str = "radius",  # noqa: A002 - 0.27's name
        latitude: float | None = None,
        longitude: float | None = None,
        max_distance: float | None = None,
        distance_unit: str = "km",
        with_dist: bool = True,
        with_coord: bool = True,
        count: int | None = None,
        memory: bool = True,
    ) -> None:
        meta = repository.meta
        kind = getattr(type, "value", type)
        if kind != "radius" or latitude is None or longitude is None or max_distance is None:
            raise ValidationError(
                f"{meta.name}: a geospatial query is a radius query with latitude, longitude "
                f"and max_distance, got type={kind!r} latitude={latitude!r} "
                f"longitude={longitude!r} max_distance={max_distance!r}",
                model=meta.name,
            )
        self.repository = repository
        self.key_parts = parts
        self.latitude = latitude
        self.longitude = longitude
        self.max_distance = max_distance
        self.distance_unit = distance_unit
        self.with_dist = with_dist
        self.with_coord = with_coord
        self.count = count
        self.memory = memory

    @property
    def entity(self) -> Coroutine[Any, Any, Any]:
        return self._entity()

    async def _entity(self) -> Any:
        repository = self.repository
        manager = repository.manager
        near = manager.near if self.memory else manager.near_in_fallback
        found = await near(
            *self.key_parts,
            latitude=self.latitude,
            longitude=self.longitude,
            radius=self.max_distance,
            unit=self.distance_unit,
            count=self.count,
        )
        if not found:
            raise EntityNotFoundError(manager.meta.name, self.key_parts)
        data = [
            GeoMember(
                member=getattr(member, MEMBER).encode(),
                dist=distance if self.with_dist else None,
                hash=None,
                coord=GeoPoint(getattr(member, LONGITUDE), getattr(member, LATITUDE))
                if self.with_coord
                else None,
            )
            for member, distance in found
        ]
        keys = dict(zip(repository.key_attrs, self.key_parts, strict=True))
        return repository.entity_cls(**keys, data=data)

    @property
    def exists(self) -> Coroutine[Any, Any, bool]:
        return self._exists()

    async def _exists(self) -> bool:
        if not self.memory:
            (record,) = await self.repository.manager.fallback_records([self.key_parts])
            return record is not None
        try:
            await self.repository.manager.get(*self.key_parts)
        except EntityNotFoundError:
            return False
        return True

    @property
    def delete(self) -> Coroutine[Any, Any, None]:
        return self.repository.manager.delete(*self.key_parts)


class GeoSpatialRepository(Repository[E, K]):
    """0.27's geospatial repository: one Redis geo set per entity key."""

    manager: GeoManager[Any]
    key_attrs: ClassVar[Sequence[str]]

    @classmethod
    def _compile(cls, entity: type) -> ModelMeta:
        return geo_meta(entity, cls.key_attrs, cls.name, cls.__name__)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.manager = GeoManager(self.meta, self.session)

    def query(self, *args: Any, **kwargs: Any) -> GeoSpatialQuery:
        """A radius query: key parts (by position or key attribute), then the options
        ``latitude``, ``longitude``, ``max_distance``, ``distance_unit`` ("km"),
        ``with_dist``, ``with_coord`` and ``count``; ``memory=False`` answers from the
        fallback's points alone (0.27 answered nothing there: its fallback had no
        radius query)."""
        options = {name: kwargs.pop(name) for name in QUERY_OPTIONS if name in kwargs}
        memory = bool(kwargs.pop("memory", True))
        parts = key_parts(self.meta, self.key_attrs, args, kwargs)
        return GeoSpatialQuery(self, parts, memory=memory, **options)

    async def add(
        self, entity: E, *entities: E, memory: bool = True, memory_always: bool = True
    ) -> None:
        """Add each entity's ``data``: a ``GeoMember`` with ``coord`` (or a list of them),
        the fallback first, then Redis (see ``Repository.add``).

        Raises:
            ValidationError: a member without coordinates, or coordinates out of range.
        """
        members = []
        for each in (entity, *entities):
            parts = tuple(getattr(each, attr) for attr in self.key_attrs)
            data = getattr(each, DATA, None)
            for point in data if isinstance(data, list) else [data]:
                members.append(self._member(parts, point))
        await self.manager.add(*members)

    def _member(self, parts: tuple[Any, ...], point: Any) -> Any:
        coord = getattr(point, "coord", None)
        name = getattr(point, MEMBER, None)
        if coord is None or name is None:
            raise ValidationError(
                f"{self.meta.name}: data must be a GeoMember with coord, got {point!r}",
                model=self.meta.name,
                value=point,
            )
        values = dict(zip(self.key_attrs, parts, strict=True))
        values[MEMBER] = name.decode() if isinstance(name, bytes) else name
        values[LATITUDE] = coord.latitude
        values[LONGITUDE] = coord.longitude
        return self.meta.model(**values)


class DatastoreGeoSpatialRepository(GeoSpatialRepository[E, K]):
    """0.27's Datastore variant: the same repository (a Datastore fallback keeps each
    member's properties out of indexes, as 0.27 did)."""


class GeoSpatialService(Service[E]):
    """0.27's geospatial service: ``get_one(**key attributes and query options)``,
    ``add``, ``delete``, ``exists``."""


class DatastoreGeoSpatialService(GeoSpatialService[E]):
    """0.27's Datastore variant of the geospatial service."""


async def make_geospatial_service(
    repository_cls: type[GeoSpatialRepository[Any, Any]],
    memory_data_source_factory: Callable[[], Awaitable[RedisSide | str]],
    fallback_data_source_factory: Callable[[], Awaitable[FallbackStore | str]],
    repository_expire_time: int | None,
    cb_failure_threshold: int | None = None,
    cb_recovery_timeout: float | None = None,
    **options: Unpack[LegacyServiceOptions],
) -> GeoSpatialService[Any]:
    """A service over a ``GeoSpatialRepository`` subclass (see ``make_hash_service``;
    0.27's geospatial factory had no cache arguments).

    Raises:
        ConfigurationError: a bad option or 0.27 argument, named.
    """
    return await _build(
        GeoSpatialRepository,
        repository_cls,
        memory_data_source_factory,
        fallback_data_source_factory,
        repository_expire_time,
        None,
        None,
        None,
        cb_failure_threshold,
        cb_recovery_timeout,
        1.0,
        GeoSpatialService,
        dict(options),
    )
