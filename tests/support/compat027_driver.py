# 0.27's jsondaora parses typing.List/Dict/Optional, not list[...] or X | None.
# ruff: noqa: UP006, UP035, UP045
"""Drives dbdaora 0.27 for tests/legacy/test_compat_027.py.

Runs under .venv-dbdaora027 (dbdaora==0.27.0, aioredis<2, google-cloud-datastore),
never inside the suite's own interpreter. Reads a JSON document on stdin, ``{"url":
redis URL, "fallback": a name in FALLBACKS, "ops": [...]}`` (and for the
``datastore`` fallback ``"datastore": {"project", "namespace"}``, the emulator
named by ``DATASTORE_EMULATOR_HOST``), runs the operations in order on 0.27
repositories sharing one Redis data source and one fallback, and prints a JSON list
with one result per operation. With ``"urls"``, a list of redis URLs, the Redis data
source is 0.27's ``make_aioredis_data_source(*urls)``, its client-side sharding over
those servers, instead of the one ``"url"``.

- ``["add", kind, fields]``: 0.27's ``add(entity, memory_always=True)`` (Redis
  and the fallback); result null.
- ``["seed_fallback", kind, fields]``: ``add(entity, memory=False)``, the
  fallback only; result null.
- ``["get", kind, key_parts, options]``: ``query(*key_parts, **options).entity``;
  the entity as plain JSON (a boolean kind's: its id), or ``{"not_found": true}``.
- ``["delete", kind, key_parts]``: ``query(*key_parts).delete``; result null.

On the ``datastore`` fallback every kind is 0.27's Datastore repository of its type
(``DatastoreHashRepository``, ``DatastoreSortedSetRepository``,
``DatastoreGeoSpatialRepository``, ``DatastoreBooleanRepository``), named as on the
``dict`` fallback.

A geospatial entity ("place") is given with ``data`` as ``[member, longitude,
latitude]``, added as aioredis's ``GeoMember`` with its ``GeoPoint``; read back,
its ``data`` is the list of GeoMembers as plain JSON lists.

The entities are the test's (tests/support/legacy_entities.py), declared again here as
0.27 code would declare them.
"""

import asyncio
import dataclasses
import json
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from aioredis import GeoMember, GeoPoint

from dbdaora import (
    BooleanRepository,
    DatastoreBooleanRepository,
    DatastoreDataSource,
    DatastoreGeoSpatialRepository,
    DatastoreHashRepository,
    DatastoreSortedSetRepository,
    DictFallbackDataSource,
    EntityNotFoundError,
    GeoSpatialRepository,
    HashRepository,
    SortedSetEntity,
    SortedSetRepository,
    make_aioredis_data_source,
)


@dataclass
class Profile:
    id: str
    name: str
    score: float
    active: bool
    tags: List[str] = field(default_factory=list)
    extra: Dict[str, int] = field(default_factory=dict)
    nick: Optional[str] = None


class ProfileRepository(HashRepository[Profile, str]): ...


class DatastoreProfileRepository(DatastoreHashRepository, entity_cls=Profile):
    name = "profile"


@dataclass
class Follow:
    user: str
    other: str
    since: int


class FollowRepository(HashRepository[Follow, str]):
    key_attrs = ("user", "other")


class DatastoreFollowRepository(DatastoreHashRepository, entity_cls=Follow):
    name = "follow"
    key_attrs = ("user", "other")


class Playlist(SortedSetEntity):
    id: str


class PlaylistRepository(SortedSetRepository[Playlist, str]): ...


class DatastorePlaylistRepository(DatastoreSortedSetRepository, entity_cls=Playlist):
    name = "playlist"


@dataclass
class Place:
    city: str
    data: Any


class PlaceRepository(GeoSpatialRepository[Place, str]):
    key_attrs = ("city",)
    entity_cls = Place


class DatastorePlaceRepository(DatastoreGeoSpatialRepository, entity_cls=Place):
    name = "place"
    key_attrs = ("city",)


@dataclass
class Seen:
    user: str
    item: str


class SeenRepository(BooleanRepository[Seen, str]):
    key_attrs = ("user", "item")


class DatastoreSeenRepository(DatastoreBooleanRepository, entity_cls=Seen):
    name = "seen"
    key_attrs = ("user", "item")


@dataclass
class Liked:
    id: str


class LikedRepository(BooleanRepository[Liked, str]): ...


class DatastoreLikedRepository(DatastoreBooleanRepository, entity_cls=Liked):
    name = "liked"


KINDS: Dict[str, Any] = {
    "profile": (Profile, ProfileRepository),
    "follow": (Follow, FollowRepository),
    "playlist": (Playlist, PlaylistRepository),
    "place": (Place, PlaceRepository),
    "seen": (Seen, SeenRepository),
    "liked": (Liked, LikedRepository),
}
DATASTORE_KINDS: Dict[str, Any] = {
    "profile": (Profile, DatastoreProfileRepository),
    "follow": (Follow, DatastoreFollowRepository),
    "playlist": (Playlist, DatastorePlaylistRepository),
    "place": (Place, DatastorePlaceRepository),
    "seen": (Seen, DatastoreSeenRepository),
    "liked": (Liked, DatastoreLikedRepository),
}


def datastore_source(options: Dict[str, str]) -> Any:
    # Imported here: only the datastore leg needs google-cloud-datastore.
    from google.cloud import datastore

    return DatastoreDataSource(
        client=datastore.Client(project=options["project"], namespace=options["namespace"])
    )


FALLBACKS: Dict[str, Any] = {"dict": DictFallbackDataSource, "datastore": datastore_source}


def plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, bytes as text, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def entity(kind: str, fields: Dict[str, Any]) -> Any:
    cls = KINDS[kind][0]
    if kind == "playlist":
        fields = {**fields, "data": [tuple(pair) for pair in fields["data"]]}
    if kind == "place":
        member, longitude, latitude = fields["data"]
        point = GeoPoint(longitude=longitude, latitude=latitude)
        fields = {**fields, "data": GeoMember(member=member, dist=None, hash=None, coord=point)}
    return cls(**fields)


async def run(request: Dict[str, Any]) -> List[Any]:
    urls = request["urls"] if "urls" in request else [request["url"]]
    memory = await make_aioredis_data_source(*urls)
    fallback_name, ops = request["fallback"], request["ops"]
    if fallback_name == "datastore":
        fallback, kinds = datastore_source(request["datastore"]), DATASTORE_KINDS
    else:
        fallback, kinds = FALLBACKS[fallback_name](), KINDS
    repositories = {
        kind: repository(memory_data_source=memory, fallback_data_source=fallback, expire_time=60)
        for kind, (_, repository) in kinds.items()
    }
    results: List[Any] = []
    try:
        for op, kind, *args in ops:
            repository = repositories[kind]
            if op == "add":
                await repository.add(entity(kind, args[0]), memory_always=True)
                results.append(None)
            elif op == "seed_fallback":
                await repository.add(entity(kind, args[0]), memory=False)
                results.append(None)
            elif op == "delete":
                await repository.query(*args[0]).delete
                results.append(None)
            else:
                key_parts, options = args
                try:
                    results.append(plain(await repository.query(*key_parts, **options).entity))
                except EntityNotFoundError:
                    results.append({"not_found": True})
    finally:
        memory.close()
        await memory.wait_closed()
    return results


def main() -> None:
    request = json.load(sys.stdin)
    print(json.dumps(asyncio.run(run(request))))


if __name__ == "__main__":
    main()
