"""``memory://`` as the fallback: ``DictFallback``, records in a dict.

For tests, demos and the quick start: the records live as long as the process.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.backends import zset
from dbdaora.backends.fallback.protocol import Members, Points, Repair

if TYPE_CHECKING:
    from dbdaora.backends.fallback.protocol import FallbackStore
    from dbdaora.meta import ModelMeta


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class DictFallback:
    """``memory://`` as a fallback: records in a dict, copied in and out.

    Hash records are kept as the same text a Redis hash holds, so what comes out
    is always a fresh instance, never the one that was put in.
    """

    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.records: dict[tuple[str, str], Any] = {}
        self.repair_records: dict[bytes, int] = {}
        self._stamps = itertools.count(1)

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        found = []
        for name in names:
            record = self.records.get((meta.key_name, name))
            found.append(None if record is None else meta.from_hash(record, None))
        return found

    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None:
        for name, entity in zip(names, entities, strict=True):
            record = {field: _bytes(text) for field, text in meta.to_hash(entity).items()}
            self.records[(meta.key_name, name)] = record

    async def delete(self, meta: ModelMeta, name: str) -> None:
        self.records.pop((meta.key_name, name), None)

    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        record = self.records.get((meta.key_name, name))
        return None if record is None else list(record.items())

    async def add_members(
        self, meta: ModelMeta, name: str, members: Members, max_size: int | None
    ) -> bool:
        created = (meta.key_name, name) not in self.records
        record: dict[str, float] = self.records.setdefault((meta.key_name, name), {})
        record.update(members)
        if max_size is not None and len(record) > max_size:
            ranked = zset.ordered((member.encode(), score) for member, score in record.items())
            for member, _ in ranked[: len(record) - max_size]:
                del record[member.decode()]
        return created

    async def remove_members(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        record = self.records.get((meta.key_name, name))
        if record is not None:
            for member in members:
                record.pop(member, None)
            if not record:  # as SQL and Datastore: a set without members is no set
                del self.records[(meta.key_name, name)]

    # -- geospatial sets: {member: (longitude, latitude)} -----------------------------

    async def get_points(self, meta: ModelMeta, name: str) -> list[tuple[str, float, float]] | None:
        record = self.records.get((meta.key_name, name))
        return None if record is None else [(m, lon, lat) for m, (lon, lat) in record.items()]

    async def add_points(self, meta: ModelMeta, name: str, points: Points) -> bool:
        created = (meta.key_name, name) not in self.records
        record = self.records.setdefault((meta.key_name, name), {})
        record.update((member, (lon, lat)) for member, lon, lat in points)
        return created

    async def remove_points(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        await self.remove_members(meta, name, members)

    async def delete_points(self, meta: ModelMeta, name: str) -> None:
        await self.delete(meta, name)

    async def record_names(self, meta: ModelMeta, after: str | None, limit: int) -> list[str]:
        names = (
            name
            for key_name, name in self.records
            if key_name == meta.key_name and (after is None or name > after)
        )
        return heapq.nsmallest(limit, names)

    async def create_all(self, metas: Sequence[ModelMeta]) -> None:
        return None

    async def add_repairs(self, keys: Sequence[bytes]) -> None:
        stamp = next(self._stamps)
        for key in keys:
            self.repair_records[key] = stamp

    async def repairs(self, limit: int) -> list[Repair]:
        return list(itertools.islice(self.repair_records.items(), limit))

    async def clear_repairs(self, records: Sequence[Repair]) -> None:
        for key, stamp in records:
            if self.repair_records.get(key) == stamp:
                del self.repair_records[key]


if TYPE_CHECKING:
    _conforms: type[FallbackStore] = DictFallback
