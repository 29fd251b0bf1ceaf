"""Data compatibility with dbdaora 0.27 on a shared Datastore, both ways.

0.27's Datastore repositories (``DatastoreHashRepository``,
``DatastoreSortedSetRepository``, ``DatastoreGeoSpatialRepository``, through
tests/support/compat027_driver.py) and this library's ``datastore://`` fallback use
one emulator and namespace. Each side writes; the private Redis is flushed; the
other side reads the same entities through read-through from Datastore. The 0.27
harness (fixtures, entities) is test_compat_027.py's.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
from google.cloud import datastore

from dbdaora import (
    DatastoreGeoSpatialRepository,
    EntityNotFoundError,
    Session,
    make_redis_data_source,
)
from tests.legacy.test_compat_027 import (
    DATASTORE_027,
    FOLLOW,
    MEMBERS,
    NAMESPACE_027,
    NEAR,
    PLACES,
    Place,
    Run027,
    Shop,
    _plain,
    _repositories,
    datastore_027,
    python_027,
    run_027,
)
from tests.support.legacy_entities import Playlist, Profile
from tests.support.servers import RedisServer

pytestmark = pytest.mark.compat

__all__ = ["datastore_027", "python_027", "run_027"]  # fixtures of test_compat_027.py

PROFILES = [
    Profile("p1", "Ann", 1.5, True, ["a", "é"], {"x": 1}),
    Profile("p2", "Bob", 2.0, False, [], {}, "bo"),
]
PLAYLIST = {"id": "pl", "data": [["m1", 1.0], ["m2", 2.5], ["m3", 4.0]], "max_size": 3}
GONE = Profile("gone", "Gone", 0.0, False)


class DatastorePlaceRepository(DatastoreGeoSpatialRepository[Place, str]):
    name = "place"
    key_attrs = ("city",)
    entity_cls = Place


def _client() -> datastore.Client:
    """A plain client on the emulator and namespace both sides use."""
    return DATASTORE_027["emulator"].client(NAMESPACE_027)


async def test_hashes_and_sorted_sets_027_writes_read_here(
    run_027: Run027, datastore_027: str, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27's entities (lists as arrays, dicts as embedded entities, None, a composite key,
    a sorted set with int and float scores) read through here after FLUSHALL as the same
    entities; a hash and a sorted set written here and deleted by 0.27 are not found."""
    profiles, follows, playlists = await _repositories(redis_proc.url, datastore_027)
    await profiles.add(GONE)
    await playlists.add(Playlist(id="gone", data=[("x", 1.0)]))
    run_027(
        "datastore",
        [
            *(["add", "profile", _plain(profile)] for profile in PROFILES),
            ["add", "follow", _plain(FOLLOW)],
            ["add", "playlist", {"id": "pl", "data": MEMBERS}],
            ["delete", "profile", ["gone"]],
            ["delete", "playlist", ["gone"]],
        ],
    )
    client = _client()
    record = client.get(client.key("profile", "p1"))
    assert record["tags"] == ["a", "é"] and dict(record["extra"]) == {"x": 1}
    assert record["nick"] is None and set(record.exclude_from_indexes) == set(record)
    assert client.get(client.key("playlist", "pl"))["data"] == ["m1", 1, "m2", 2.5, "m3", 4]
    raw_redis.flushall()

    assert [await profiles.query(p.id).entity for p in PROFILES] == PROFILES
    assert await follows.query("ann", "bob").entity == FOLLOW
    assert await playlists.query("pl", withscores=True, withmaxsize=True).entity == Playlist(
        id="pl", data=[(b"m1", 1.0), (b"m2", 2.5), (b"m3", 4.0)], max_size=3
    )
    for repository in (profiles, playlists):
        with pytest.raises(EntityNotFoundError):
            await repository.query("gone").entity
    assert raw_redis.exists("profile:p1", "profile:p2", "follow:ann:bob", "playlist:pl") == 4
    await profiles.close()


async def test_hashes_and_sorted_sets_written_here_027_reads(
    run_027: Run027, datastore_027: str, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27 reads through from Datastore, after FLUSHALL, this library's hashes,
    composite-key hash and sorted set as the same entities; a hash and a sorted set 0.27
    wrote and this library deleted are not found there."""
    run_027(
        "datastore",
        [["add", "profile", _plain(GONE)], ["add", "playlist", {"id": "gone", "data": [["x", 1]]}]],
    )
    profiles, follows, playlists = await _repositories(redis_proc.url, datastore_027)
    await profiles.add(*PROFILES)
    await follows.add(FOLLOW)
    await playlists.add(Playlist(id="pl", data=MEMBERS))
    await profiles.query("gone").delete
    await playlists.query("gone").delete
    await profiles.close()
    raw_redis.flushall()

    results = run_027(
        "datastore",
        [
            *(["get", "profile", [profile.id], {}] for profile in PROFILES),
            ["get", "follow", ["ann", "bob"], {}],
            ["get", "playlist", ["pl"], {"withscores": True, "withmaxsize": True}],
            ["get", "profile", ["gone"], {}],
            ["get", "playlist", ["gone"], {}],
        ],
    )
    assert results == [
        *(_plain(profile) for profile in PROFILES),
        _plain(FOLLOW),
        PLAYLIST,
        {"not_found": True},
        {"not_found": True},
    ]


# -- geospatial sets: an entity per member, named <city>:<member> ------------------------

LYON = ["bellecour", 4.832, 45.7578]


def _stored(client: datastore.Client) -> dict[str, tuple[str, float, float]]:
    """Each member entity of the ``place`` kind: (member, longitude, latitude) by key name,
    having checked that none of its properties is indexed (0.27's layout)."""
    records = list(client.query(kind="place").fetch())
    assert all(set(r.exclude_from_indexes) == {"member", "latitude", "longitude"} for r in records)
    return {r.key.name: (r["member"], r["longitude"], r["latitude"]) for r in records}


def _points(shops: list[Shop]) -> dict[str, tuple[float, float]]:
    return {s.name: (s.longitude, s.latitude) for s in shops}


def _near(points: Any) -> dict[str, Any]:
    """(member, longitude, latitude) as GEOPOS gives them back (52-bit geohashes)."""
    return {m: pytest.approx((lon, lat), abs=1e-5) for m, lon, lat in points}


async def test_geo_sets_027_writes_to_datastore_change_here(
    run_027: Run027, datastore_027: str, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27's member entities read through here after FLUSHALL, through
    DatastoreGeoSpatialRepository and a GeoModel; a member removed here and one moved here
    leave, after FLUSHALL, exactly the changed set, which 0.27 reads back."""
    run_027(
        "datastore",
        [
            *(["add", "place", {"city": "paris", "data": place}] for place in PLACES),
            ["add", "place", {"city": "lyon", "data": LYON}],
        ],
    )
    written = {f"paris:{m}": (m, lon, lat) for m, lon, lat in PLACES}
    assert _stored(_client()) == {**written, "lyon:bellecour": tuple(LYON)}
    raw_redis.flushall()
    places = DatastorePlaceRepository(
        memory_data_source=await make_redis_data_source(redis_proc.url),
        fallback_data_source=datastore_027,
        expire_time=60,
    )
    found = await places.query("paris", **NEAR).entity
    assert {g.member.decode(): tuple(g.coord) for g in found.data} == _near(PLACES)
    await places.close()
    raw_redis.flushall()

    async with Session(memory=redis_proc.url, fallback=datastore_027) as session:
        shops = Shop.objects.using(session)
        assert _points(await shops.get("paris")) == _near(PLACES)
        await shops.remove("paris", "louvre")
        await shops.add(Shop(city="paris", name="eiffel", longitude=2.3, latitude=48.87))
    raw_redis.flushall()
    moved = {"paris:eiffel": ("eiffel", 2.3, 48.87), "paris:orsay": written["paris:orsay"]}
    assert _stored(_client()) == {**moved, "lyon:bellecour": tuple(LYON)}
    async with Session(memory=redis_proc.url, fallback=datastore_027) as session:
        shops = Shop.objects.using(session)
        assert _points(await shops.get("paris")) == _near(moved.values())
        assert _points(await shops.get("lyon")) == _near([LYON])
        ours = await shops.near(
            "paris", latitude=NEAR["latitude"], longitude=NEAR["longitude"], radius=5
        )
    raw_redis.flushall()
    (theirs,) = run_027("datastore", [["get", "place", ["paris"], NEAR]])
    assert sorted(theirs["data"], key=lambda member: member[1]) == [
        [s.name, d, None, [s.longitude, s.latitude]] for s, d in ours
    ]
    # 0.27's read-through queried the whole kind: Lyon's member joined Paris's set.
    assert raw_redis.zscore("place:paris", "bellecour") is not None


async def test_geo_sets_written_here_027_reads_from_datastore(
    run_027: Run027, datastore_027: str, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27's radius query reads through from Datastore, after FLUSHALL, a set written
    here, as this library reads it."""
    async with Session(memory=redis_proc.url, fallback=datastore_027) as session:
        await Shop.objects.using(session).add(
            *(Shop(city="paris", name=n, longitude=lon, latitude=lat) for n, lon, lat in PLACES)
        )
        ours = await Shop.objects.using(session).near(
            "paris", latitude=NEAR["latitude"], longitude=NEAR["longitude"], radius=5
        )
    assert _stored(_client()) == {f"paris:{m}": (m, lon, lat) for m, lon, lat in PLACES}
    raw_redis.flushall()
    (theirs,) = run_027("datastore", [["get", "place", ["paris"], NEAR]])
    assert sorted(theirs["data"], key=lambda member: member[1]) == [
        [s.name, d, None, [s.longitude, s.latitude]] for s, d in ours
    ]
