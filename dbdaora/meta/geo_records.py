"""Geospatial records: a member and its coordinates, checked against Redis's limits."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.backends.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT
from dbdaora.exceptions import ValidationError

if TYPE_CHECKING:
    from dbdaora.meta.field_info import FieldInfo


class GeoRecords:
    """The geospatial record methods of ``ModelMeta``, over the attributes it declares."""

    model: type
    name: str
    key_fields: tuple[FieldInfo, ...]
    member: FieldInfo | None
    latitude: FieldInfo | None
    longitude: FieldInfo | None

    def check_coordinate(self, label: str, value: Any, limit: float) -> float:
        """``value`` as a float within ±``limit``; ``label`` names the field or argument.

        Raises:
            ValidationError: not a number, NaN, or beyond the limit (Redis's GEOADD
                takes latitudes within ±85.05112878, longitudes within ±180).
        """
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or math.isnan(value)
            or not -limit <= value <= limit
        ):
            raise ValidationError(
                f"{self.name}.{label}: must be a number within ±{limit:g}, got {value!r}",
                model=self.name,
                field=label,
                value=value,
            )
        return float(value)

    def to_point(self, entity: Any) -> tuple[str, float, float]:
        """The member text, longitude and latitude of a geospatial instance."""
        assert self.member is not None and self.latitude is not None
        assert self.longitude is not None
        values = entity.__dict__
        member = values[self.member.name]
        if not isinstance(member, str) or not member:
            raise ValidationError(
                f"{self.name}.{self.member.name}: must be a non-empty str, got {member!r}",
                model=self.name,
                field=self.member.name,
                value=member,
            )
        longitude = values[self.longitude.name]
        latitude = values[self.latitude.name]
        return (
            member,
            self.check_coordinate(self.longitude.name, longitude, LONGITUDE_LIMIT),
            self.check_coordinate(self.latitude.name, latitude, LATITUDE_LIMIT),
        )

    def from_point(
        self, parts: Sequence[Any], member: bytes | str, longitude: float, latitude: float
    ) -> Any:
        """An instance of the member of the set ``parts`` at these coordinates."""
        assert self.member is not None and self.latitude is not None
        assert self.longitude is not None
        values = {field.name: part for field, part in zip(self.key_fields, parts, strict=True)}
        values[self.member.name] = member.decode() if isinstance(member, bytes) else member
        values[self.longitude.name] = longitude
        values[self.latitude.name] = latitude
        entity: Any = object.__new__(self.model)
        entity.__dict__.update(values)
        return entity
