"""Geospatial models: one Redis geo set per key; each instance is one member and its place.

A geo set is a sorted set whose scores are GEOADD's 52-bit geohashes. The
manager computes them as Redis does (``backends.geo``), so its writes are the
sorted-set ones, under the same lease protocol, and store what GEOADD stores,
bit for bit. Its reads are GEOSEARCH (``near``) and ZRANGE (``get``, decoded as
GEOPOS does). The fallback keeps one record per member: member, longitude,
latitude.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

from dbdaora.backends import geo, zset
from dbdaora.exceptions import ValidationError
from dbdaora.managers.base import M
from dbdaora.managers.sets import SetManager
from dbdaora.meta import CorruptData

T = TypeVar("T")
_MAX_GEOHASH = float(1 << (2 * geo.STEP))


class GeoManager(SetManager[M]):
    """``Model.objects`` of a geospatial model.

    Reads of a set that neither Redis nor the fallback holds raise
    ``EntityNotFoundError``; ``near`` on a set that exists answers its members
    within the radius, maybe none. Coordinates read back are those Redis keeps:
    quantised to its geohash grid (under a meter off what was added).
    """

    __slots__ = ()

    OPERATIONS: ClassVar[tuple[str, ...]] = (*SetManager.OPERATIONS, "near")

    async def add(self, *entities: M) -> None:
        """Add members, or move members already there: the fallback first, then Redis.

        With Redis unreachable the write still succeeds (see ``HashManager.add``).

        Raises:
            ValidationError: a member that is no non-empty str, a latitude beyond
                ±85.05112878 or a longitude beyond ±180, before any I/O.
            BackendError: the fallback failed; sets of earlier groups are written.
        """
        meta = self.meta
        groups: dict[str, dict[str, tuple[float, float]]] = {}
        for entity in entities:
            meta.check_instance(entity)
            member, longitude, latitude = meta.to_point(entity)
            groups.setdefault(meta.instance_key_text(entity), {})[member] = (longitude, latitude)
        session = self.session
        ttl = session.ttl(meta)
        for name, members in groups.items():
            points = [(member, lon, lat) for member, (lon, lat) in members.items()]
            pairs = [(member, geo.score(lon, lat)) for member, lon, lat in points]
            token, claimed = await self._claim([meta.marker_key(name)])
            created = await self._durable(name, session.fallback.add_points, meta, name, points)
            session.stats_for(meta).fallback_writes += 1
            await self._written(
                name,
                claimed,
                session.memory.add_members,
                meta.redis_key(name),
                meta.marker_key(name),
                pairs,
                ttl,
                None,
                token=token,
                created=created,
            )

    async def get(self, *parts: Any, **named: Any) -> list[M]:
        """Every member of the set, in geohash order (ZRANGE's)."""
        key_parts = self.meta.key_parts(parts, named)
        members: list[M] = await self._answer(
            key_parts,
            ("get",),
            lambda memory, key: memory.zrange(key, 0, -1, reverse=False),
            lambda pairs: [self._member(key_parts, member, score) for member, score in pairs],
            lambda pairs: [
                self._member(key_parts, member, score) for member, score in zset.ordered(pairs)
            ],
            probe_empty=False,  # Redis keeps no empty sets: no members, no set
        )
        return [self.meta.copy(member) for member in members]

    async def near(
        self,
        *parts: Any,
        latitude: float,
        longitude: float,
        radius: float,
        unit: str = "km",
        count: int | None = None,
        **named: Any,
    ) -> list[tuple[M, float]]:
        """The members within ``radius`` of a point, nearest first, with their distances.

        ``near(*key_parts, latitude=, longitude=, radius=, unit="km", count=None)``:
        GEOSEARCH ... BYRADIUS ASC WITHDIST WITHCOORD. Distances are in ``unit``
        (``m``, ``km``, ``mi`` or ``ft``), to 4 decimals as Redis gives them;
        ``count`` keeps the nearest ones only.

        Raises:
            ValidationError: a latitude beyond ±85.05112878, a longitude beyond
                ±180, a radius not above 0, an unknown unit, a count below 1.
            EntityNotFoundError: no such set.
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        lat = meta.check_coordinate("latitude", latitude, geo.LATITUDE_LIMIT)
        lon = meta.check_coordinate("longitude", longitude, geo.LONGITUDE_LIMIT)
        self._check_query(radius, unit, count)
        found: list[tuple[M, float]] = await self._answer(
            key_parts,
            ("near", lon, lat, float(radius), unit, count),
            lambda memory, key: memory.geosearch(key, lon, lat, float(radius), unit, count),
            lambda answer: [
                (meta.from_point(key_parts, self._text(member), *at), dist)
                for member, dist, at in answer
            ],
            lambda pairs: [
                (meta.from_point(key_parts, self._text(member), *at), dist)
                for member, dist, at in geo.search(pairs, lon, lat, float(radius), unit, count)
            ],
            probe_empty=True,  # no member within the radius of a set Redis holds
        )
        return [(meta.copy(member), dist) for member, dist in found]

    async def near_in_fallback(
        self,
        *parts: Any,
        latitude: float,
        longitude: float,
        radius: float,
        unit: str = "km",
        count: int | None = None,
    ) -> list[tuple[M, float]]:
        """``near`` answered from the fallback's points alone: Redis is neither read nor
        filled (0.27's ``memory=False``). An empty list where none is within ``radius``.

        Raises:
            ValidationError: as ``near``.
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, {})
        lat = meta.check_coordinate("latitude", latitude, geo.LATITUDE_LIMIT)
        lon = meta.check_coordinate("longitude", longitude, geo.LONGITUDE_LIMIT)
        self._check_query(radius, unit, count)
        (record,) = await self.fallback_records([key_parts])
        pairs = [(member.encode(), score) for member, score in record or ()]
        return [
            (meta.from_point(key_parts, member.decode(), *at), dist)
            for member, dist, at in geo.search(pairs, lon, lat, float(radius), unit, count)
        ]

    def _check_query(self, radius: Any, unit: Any, count: Any) -> None:
        name = self.meta.name
        if (
            not isinstance(radius, (int, float))
            or isinstance(radius, bool)
            or not 0 < radius < math.inf
        ):
            raise ValidationError(
                f"{name}: radius must be a number above 0, got {radius!r}",
                model=name,
                field="radius",
                value=radius,
            )
        if unit not in geo.UNITS:
            raise ValidationError(
                f"{name}: unit must be one of {list(geo.UNITS)}, got {unit!r}",
                model=name,
                field="unit",
                value=unit,
            )
        if count is not None and (
            not isinstance(count, int) or isinstance(count, bool) or count < 1
        ):
            raise ValidationError(
                f"{name}: count must be an int of 1 or more, or None, got {count!r}",
                model=name,
                field="count",
                value=count,
            )

    def _member(self, parts: tuple[Any, ...], member: bytes, geohash: float) -> M:
        if not 0 <= geohash < _MAX_GEOHASH or geohash != int(geohash):
            raise CorruptData(f"{self.meta.name}: {geohash!r} is not a geohash")
        member_entity: M = self.meta.from_point(parts, self._text(member), *geo.position(geohash))
        return member_entity

    def _text(self, member: bytes) -> str:
        try:
            return member.decode()
        except UnicodeDecodeError as exc:
            raise CorruptData(f"{self.meta.name}: member {member!r} is not UTF-8") from exc

    async def _fetch(self, names: list[str]) -> list[Any]:
        """Each set's members as (member, geohash) pairs, None where it has none."""
        meta, session = self.meta, self.session
        found: list[Any] = []
        for name in names:
            points = await session.durable(session.fallback.get_points, meta, name)
            found.append(
                [(member, geo.score(lon, lat)) for member, lon, lat in points] if points else None
            )
        return found

    def _fallback_remove(self) -> Callable[..., Awaitable[None]]:
        return self.session.fallback.remove_points

    def _fallback_delete(self) -> Callable[..., Awaitable[None]]:
        return self.session.fallback.delete_points
