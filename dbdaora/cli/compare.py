"""How a Redis copy compares with its fallback record: the verdicts of repair and inspect."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import Any

from dbdaora.backends import FallbackStore, geo
from dbdaora.cli.raw import Copy
from dbdaora.lease import NOT_FOUND, is_lease
from dbdaora.meta import CorruptData, ModelMeta, StoreKind


class Verdict(enum.Enum):
    AGREE = "agree"
    DIFFER = "differ"
    NO_RECORD = "no fallback record"
    IN_FLIGHT = "in flight (a lease or a writer's claim)"
    ABSENT = "not in Redis"


async def records(fallback: FallbackStore, meta: ModelMeta, names: Sequence[str]) -> list[Any]:
    """The fallback's record of each name: an entity, a sorted set's members (a geo set's
    with their geohash scores, as Redis holds them), or None."""
    if meta.kind is StoreKind.HASH:
        return await fallback.get_many(meta, names)
    if meta.kind is StoreKind.GEOSPATIAL:
        found = await asyncio.gather(*(fallback.get_points(meta, name) for name in names))
        return [
            None if points is None else [(m, geo.score(lon, lat)) for m, lon, lat in points]
            for points in found
        ]
    return list(await asyncio.gather(*(fallback.get_members(meta, name) for name in names)))


def judge_copy(meta: ModelMeta, copy: Copy, parts: Sequence[Any], record: Any) -> Verdict:
    """A data key's copy against the record: the same entity (or members), or not."""
    if copy.kind == "none":
        return Verdict.ABSENT
    if record is None:
        return Verdict.NO_RECORD
    if meta.kind is StoreKind.HASH:
        if copy.kind != "hash":
            return Verdict.DIFFER
        try:
            entity = meta.from_hash(copy.value, parts)
        except CorruptData:
            return Verdict.DIFFER
        return Verdict.AGREE if entity == record else Verdict.DIFFER
    if copy.kind != "zset":
        return Verdict.DIFFER
    members = sorted((member.decode(), float(score)) for member, score in copy.value)
    return Verdict.AGREE if members == sorted(record) else Verdict.DIFFER


def judge_marker(copy: Copy, record: Any) -> Verdict:
    """A marker against the record: ``NOT_FOUND`` agrees only where there is none."""
    if copy.kind == "none":
        return Verdict.ABSENT
    if copy.kind == "string" and is_lease(copy.value):
        return Verdict.IN_FLIGHT
    if copy.kind == "string" and copy.value == NOT_FOUND and record is None:
        return Verdict.AGREE
    return Verdict.DIFFER
