"""A geospatial model's descriptors, which are also dbdaora 0.27's ``GeoMember`` and ``GeoPoint``.

0.27 took both from aioredis 1.x: ``GeoPoint(longitude, latitude)`` and
``GeoMember(member, dist, hash, coord)``, named tuples. They live here, with
the same fields, so that 0.27 code imports them from ``dbdaora``. Called with no
argument, ``GeoMember()`` declares a model's member field instead (as
``SortedMember()`` does), so the one name serves both.
"""

from __future__ import annotations

from typing import Any, NamedTuple, overload

from dbdaora.fields.spec import FieldKind, FieldSpec


class GeoPoint(NamedTuple):
    """A longitude and a latitude, in degrees (aioredis 1.x's ``GeoPoint``)."""

    longitude: float
    latitude: float


class _GeoMemberTuple(NamedTuple):
    member: Any
    dist: float | None
    hash: int | None
    coord: GeoPoint | None


class GeoMember(_GeoMemberTuple):
    """``GeoMember()`` declares the member of a geospatial model (a ``str`` field);
    ``GeoMember(member, dist, hash, coord)`` is aioredis 1.x's tuple, as 0.27 used it."""

    __slots__ = ()

    @overload
    def __new__(cls) -> Any: ...
    @overload
    def __new__(
        cls,
        member: Any,
        dist: float | None = None,
        hash: int | None = None,
        coord: GeoPoint | None = None,
    ) -> GeoMember: ...
    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            return FieldSpec(FieldKind.GEO_MEMBER)
        return super().__new__(cls, *args, **kwargs)


def Latitude() -> Any:  # noqa: N802 - declarations read like types, as attrs.Factory does
    """The latitude of a geospatial model's member, in degrees (a ``float`` field)."""
    return FieldSpec(FieldKind.LATITUDE)


def Longitude() -> Any:  # noqa: N802
    """The longitude of a geospatial model's member, in degrees (a ``float`` field)."""
    return FieldSpec(FieldKind.LONGITUDE)
