"""``ModelMeta``: everything the per-call path needs about one model, compiled once."""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from dbdaora.meta.field_info import FieldInfo
from dbdaora.meta.geo_records import GeoRecords
from dbdaora.meta.keys import KeyRules
from dbdaora.meta.records import RecordCodec


class Unset(enum.Enum):
    """An option left out: the session's (or the settings') value applies."""

    TOKEN = 0


UNSET = Unset.TOKEN


class StoreKind(enum.Enum):
    """A model's Redis data type; each has one manager (``dbdaora.managers``)."""

    HASH = "hash"
    SORTED_SET = "sorted_set"
    GEOSPATIAL = "geospatial"


@attrs.frozen
class ModelMeta(KeyRules, RecordCodec, GeoRecords):
    """Compiled metadata of one model class (``Model._meta``).

    The key methods come from ``KeyRules`` (``keys``), the encoding and decoding
    of records from ``RecordCodec`` (``records``) and, for geospatial models,
    ``GeoRecords`` (``geo_records``); ``options`` builds it. A geospatial model's
    ``GeoMember()`` is its ``member``.
    """

    model: type
    name: str
    kind: StoreKind
    key_name: str
    expire_time: int | Unset | None
    max_size: int | None
    fields: tuple[FieldInfo, ...]
    key_fields: tuple[FieldInfo, ...]
    member: FieldInfo | None
    score: FieldInfo | None
    by_name: Mapping[str, FieldInfo]
    by_raw_name: Mapping[bytes, FieldInfo]
    _key_prefix: str
    _marker_prefix: str
    _str_key: bool
    latitude: FieldInfo | None = None
    longitude: FieldInfo | None = None
