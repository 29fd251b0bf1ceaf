# mypy: disallow-untyped-calls=False
# (google-cloud-datastore ships py.typed but leaves most of its API unannotated.)
"""Models as Datastore entities, in dbdaora 0.27's layout, and Datastore's size limits.

A hash model is one entity per instance: one property per field, key fields
included, excluded from indexes unless declared ``Field(index=True)``. A sorted
set is one entity whose ``data`` property is the flat list ``[member1, score1,
...]``, ascending, excluded from indexes. A set flag is one entity holding
``{"value": True}``, excluded from indexes; any entity under its key is a set
flag, whatever it holds, as 0.27 read it. Values keep Datastore's native types
where it has them (``str``, ``int``, ``float``, ``bool``, ``bytes``, aware
``datetime``); every other value is stored as its field codec's text (JSON, ISO
dates, decimals). Naive datetimes are text too: Datastore would return them as
UTC-aware ones, which no longer compare equal.

Reading accepts text for any field, so records another writer kept as text
still decode; a field kept as JSON also reads the Datastore values 0.27 stored a
dataclass's lists, dicts and numbers as (arrays, embedded entities, numbers), as
the JSON they stand for. What does not decode raises ``CorruptData``; the store
turns it into a ``BackendError``.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from google.cloud.datastore import Client, Entity, Key
from google.cloud.datastore.helpers import entity_to_protobuf
from google.cloud.datastore.query import PropertyFilter
from google.cloud.datastore_v1.types import entity as entity_pb2

from dbdaora.backends import zset
from dbdaora.exceptions import ValidationError
from dbdaora.fields import Category
from dbdaora.meta import CorruptData, FieldInfo, ModelMeta

MAX_INDEXED_BYTES = 1500
MAX_ENTITY_BYTES = 1_048_572
DATA = "data"
VALUE = "value"
_INT64 = range(-(2**63), 2**63)

Convert = Callable[[Any], Any]


def _plain(value: datetime.datetime) -> datetime.datetime:
    """The client's ``DatetimeWithNanoseconds`` as a plain datetime, same instant."""
    return datetime.datetime(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
        tzinfo=value.tzinfo,
    )


def _same(value: Any) -> Any:
    return value


# Category -> (the Python types Datastore hands back for it, how to finish them).
_NATIVE: dict[Category, tuple[tuple[type, ...], Convert]] = {
    Category.STR: ((str,), _same),
    Category.INT: ((int,), _same),
    Category.FLOAT: ((float, int), float),
    Category.BOOL: ((bool,), _same),
    Category.BYTES: ((bytes,), _same),
    Category.DATETIME: ((datetime.datetime,), _plain),
}


def key_for(meta: ModelMeta, name: str, project: str, namespace: str | None) -> Key:
    """The entity key of a record: kind ``key_name``, key name ``name``.

    Raises:
        ValidationError: the name is longer than Datastore allows a key name.
    """
    size = len(name.encode())
    if size > MAX_INDEXED_BYTES:
        raise ValidationError(
            f"{meta.name}: key {name[:40]!r}... is {size:,} bytes; "
            f"Datastore key names hold at most {MAX_INDEXED_BYTES:,}",
            model=meta.name,
            value=name,
        )
    return Key(meta.key_name, name, project=project, namespace=namespace)


def names_after(
    client: Client, meta: ModelMeta, after: str | None, limit: int, rpc: dict[str, Any]
) -> list[str]:
    """Up to ``limit`` record names of the model after ``after``: a keys-only query
    ordered by key (entities with a numeric id, no record of dbdaora's, are left out)."""
    query = client.query(kind=meta.key_name)
    query.keys_only()
    query.order = ["__key__"]
    if after is not None:
        bound = key_for(meta, after, client.project, client.namespace)
        query.add_filter(filter=PropertyFilter("__key__", ">", bound))
    return [found.key.name for found in query.fetch(limit=limit, **rpc) if found.key.name]


def _encoder(meta: ModelMeta, field: FieldInfo) -> Convert:
    """Python value -> Datastore value for one field, checking what Datastore refuses."""
    category, text = field.codec.category, field.codec.encode

    def int64(value: int) -> int:
        if value not in _INT64:
            raise ValidationError(
                f"{meta.name}.{field.name}: {value} is outside Datastore's 64-bit integers",
                model=meta.name,
                field=field.name,
                value=value,
            )
        return value

    def moment(value: datetime.datetime) -> datetime.datetime | str | bytes:
        return value if value.tzinfo is not None else text(value)

    encode: Convert
    if category is Category.INT:
        encode = int64
    elif category is Category.DATETIME:
        encode = moment
    else:
        encode = _same if category in _NATIVE else text
    if not field.index:
        return encode

    def indexed(value: Any) -> Any:
        stored = encode(value)
        if isinstance(stored, (str, bytes)):
            size = len(stored.encode() if isinstance(stored, str) else stored)
            if size > MAX_INDEXED_BYTES:
                raise ValidationError(
                    f"{meta.name}.{field.name}: indexed value is {size:,} bytes; Datastore "
                    f"indexes at most {MAX_INDEXED_BYTES:,} (drop index=True or shorten it)",
                    model=meta.name,
                    field=field.name,
                    value=value,
                )
        return stored

    return indexed


def _decoder(meta: ModelMeta, field: FieldInfo) -> Convert:
    """Datastore value -> Python value for one field; raises CorruptData."""
    codec = field.codec
    natives, finish = _NATIVE.get(codec.category, ((), _same))
    # bool is an int to isinstance; only a bool field takes one.
    takes_bool = codec.category is Category.BOOL
    structured = codec.category is Category.JSON

    def decode(value: Any) -> Any:
        if isinstance(value, natives) and (takes_bool or not isinstance(value, bool)):
            return finish(value)
        if structured and not isinstance(value, (str, bytes)):
            value = _json_text(meta, field, value)
        if isinstance(value, str):
            value = value.encode()
        try:
            if isinstance(value, bytes):
                return codec.decode(value)
        except Exception as exc:
            raise CorruptData(f"{meta.name}.{field.name}: cannot parse {value!r}") from exc
        raise CorruptData(f"{meta.name}.{field.name}: {value!r} is not a {codec.type_name}")

    return decode


def _json_text(meta: ModelMeta, field: FieldInfo, value: Any) -> bytes:
    """The JSON a native Datastore value stands for (an embedded entity is a dict)."""
    try:
        return json.dumps(value, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise CorruptData(f"{meta.name}.{field.name}: {value!r} is not JSON data") from exc


def check_size(meta: ModelMeta, record: Entity) -> None:
    """Refuse an entity over Datastore's limit, measured as the protobuf it is sent as.

    Raises:
        ValidationError: naming the largest property and the entity's size.
    """
    message = entity_pb2.Entity.pb(entity_to_protobuf(record))
    size = message.ByteSize()
    if size <= MAX_ENTITY_BYTES:
        return
    largest = max(message.properties, key=lambda name: message.properties[name].ByteSize())
    raise ValidationError(
        f"{meta.name} {record.key.name!r}: the Datastore entity would be {size:,} bytes, "
        f"over its limit of {MAX_ENTITY_BYTES:,}; the largest property is {largest!r} "
        f"({message.properties[largest].ByteSize():,} bytes)",
        model=meta.name,
        field=largest,
        value=size,
    )


class HashLayout:
    """A hash model's instances as entities and back, compiled once per model."""

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta
        self._fields = tuple(
            (field, _encoder(meta, field), _decoder(meta, field)) for field in meta.fields
        )
        self._unindexed = tuple(field.name for field in meta.fields if not field.index)

    def to_entity(self, key: Key, entity: Any) -> Entity:
        """The entity to put; None values are left out. Raises ValidationError."""
        record = Entity(key, exclude_from_indexes=self._unindexed)
        values = entity.__dict__
        for field, encode, _ in self._fields:
            value = values[field.name]
            if value is not None:
                record[field.name] = encode(value)
        check_size(self.meta, record)
        return record

    def from_entity(self, record: Entity) -> Any:
        """The instance an entity holds; absent or null properties are None or the default."""
        values: dict[str, Any] = {}
        for field, _, decode in self._fields:
            value = record.get(field.name)
            if value is not None:
                values[field.name] = decode(value)
            elif field.codec.optional:
                values[field.name] = None
            elif field.has_default:
                values[field.name] = field.default_value()
            else:
                raise CorruptData(f"{self.meta.name}.{field.name} is missing")
        return self.meta.build(values)


class FlagLayout:
    """A flag model's set flags as entities ``{"value": True}`` (0.27's), and back."""

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    def to_entity(self, key: Key, entity: Any) -> Entity:
        """The entity of a set flag (the manager refuses one that is not set)."""
        record = Entity(key, exclude_from_indexes=(VALUE,))
        record[VALUE] = True
        return record

    def from_entity(self, record: Entity) -> Any:
        """The set flag an entity stands for, its key parts read from its key name."""
        return self.meta.flag_entity(self.meta.parts_of(record.key.name))


class SetLayout:
    """A sorted-set model's members as one entity's ``data`` list, and back."""

    def __init__(self, meta: ModelMeta) -> None:
        self.meta = meta

    def to_entity(self, key: Key, pairs: Iterable[tuple[bytes, float]]) -> Entity:
        """The entity holding ``pairs`` (already ordered). Raises ValidationError."""
        record = Entity(key, exclude_from_indexes=(DATA,))
        record[DATA] = [item for member, score in pairs for item in (member.decode(), score)]
        check_size(self.meta, record)
        return record

    def members(self, record: Entity) -> list[tuple[str, float]]:
        """The (member, score) pairs of an entity; raises CorruptData on a bad list."""
        data = record.get(DATA)
        if not isinstance(data, list) or len(data) % 2:
            raise CorruptData(f"{self.meta.name}: {DATA!r} is not a [member, score, ...] list")
        pairs = []
        for member, score in zip(data[::2], data[1::2], strict=True):
            if isinstance(member, bytes):
                member = member.decode()
            if not isinstance(member, str) or not isinstance(score, (int, float)):
                raise CorruptData(f"{self.meta.name}: bad member {member!r} or score {score!r}")
            pairs.append((member, float(score)))
        return pairs

    @staticmethod
    def merged(
        current: Sequence[tuple[str, float]],
        added: Sequence[tuple[str, float]],
        removed: Sequence[str],
        max_size: int | None,
    ) -> list[tuple[bytes, float]]:
        """The set after an add or remove, ascending, cut to the ``max_size`` highest."""
        members = dict(current)
        members.update(added)
        for member in removed:
            members.pop(member, None)
        ranked = zset.ordered((member.encode(), score) for member, score in members.items())
        if max_size is not None and len(ranked) > max_size:
            ranked = ranked[len(ranked) - max_size :]
        return ranked
