"""Data compatibility with dbdaora 0.27, both ways, on a private redis-server.

dbdaora 0.27 runs in its own virtualenv (.venv-dbdaora027, installed from PyPI by
scripts/test) through tests/support/compat027_driver.py. What it writes to Redis — hashes,
a composite-key hash, a sorted set, not-found markers — this library reads as the
same entities; what this library writes, 0.27 reads back. Each side has its own
in-process fallback here, so a marker is shown to win over a fallback that holds
the entity. The flags also run on a shared fallback (``boolean_fallbacks``): 0.27's
``DatastoreBooleanRepository`` and this library's ``datastore://`` on one emulator
(``datastore_027``), where each reads the other's records; the hashes, sorted sets and
geo sets on a shared Datastore are in test_compat_027_datastore.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dbdaora import (
    DictFallbackDataSource,
    EntityNotFoundError,
    GeoMember,
    GeoModel,
    GeoSpatialRepository,
    Key,
    Latitude,
    Longitude,
    Session,
    make_redis_data_source,
)
from tests.support.datastore_server import PROJECT, DatastoreEmulator
from tests.support.legacy_entities import (
    Follow,
    FollowRepository,
    Liked,
    LikedRepository,
    Playlist,
    PlaylistRepository,
    Profile,
    ProfileRepository,
    Seen,
    SeenRepository,
)
from tests.support.servers import RedisServer

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_027 = "compat027"
DATASTORE_027: dict[str, DatastoreEmulator] = {}
"""The emulator the ``datastore`` fallback's 0.27 side runs on (set by ``datastore_027``)."""
PYTHON_027 = ROOT / ".venv-dbdaora027" / "bin" / "python"
DRIVER = ROOT / "tests" / "support" / "compat027_driver.py"

# Fallback sides: (the driver's name for 0.27's fallback, this library's fallback factory).
FALLBACKS = [pytest.param(("dict", DictFallbackDataSource), id="redis+own-dict-fallbacks")]

PROFILE = Profile("p1", "Ann", 1.5, True, ["a", "é"], {"x": 1})
FOLLOW = Follow("ann", "bob", 7)
MEMBERS = [("m1", 1), ("m2", 2.5), ("m3", 4)]
GHOST = Profile("ghost", "Nobody", 0.0, False)


def _plain(value: Any) -> Any:
    """What the driver prints for a value: dataclasses as dicts, bytes as text, lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


@pytest.fixture(scope="module")
def python_027() -> Path:
    """The interpreter with dbdaora 0.27; the tests skip only where it could not be installed."""
    check = [
        str(PYTHON_027),
        "-I",
        "-c",
        "import dbdaora, aioredis; assert dbdaora.__version__ == '0.27.0'",
    ]
    if not PYTHON_027.exists() or subprocess.run(check, capture_output=True).returncode:
        pytest.skip(
            "dbdaora 0.27 is not installed in .venv-dbdaora027: scripts/test installs it "
            "from PyPI and warned that the install failed"
        )
    return PYTHON_027


def drive_027(
    python: Path, request: dict[str, Any], cwd: Path, env: dict[str, str] | None = None
) -> list[Any]:
    """Run the driver on 0.27 with ``request`` (see its docstring); its results."""
    # -I: isolated, so the driver imports 0.27, never this checkout's dbdaora.
    result = subprocess.run(
        [str(python), "-I", "-W", "ignore", str(DRIVER)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        env=env if env is not None else dict(os.environ),
    )
    assert result.returncode == 0, result.stderr
    results: list[Any] = json.loads(result.stdout)
    return results


Run027 = Callable[[str, list[Any]], list[Any]]


@pytest.fixture
def run_027(
    python_027: Path, redis_proc: RedisServer, raw_redis: redis.Redis, tmp_path: Path
) -> Run027:
    """Run operations on dbdaora 0.27 (the private Redis, the named fallback); their results.

    The ``datastore`` fallback is the emulator of the ``datastore_027`` fixture.
    """

    def run(fallback: str, ops: list[Any]) -> list[Any]:
        request: dict[str, Any] = {"url": redis_proc.url, "fallback": fallback, "ops": ops}
        env = dict(os.environ)
        if fallback == "datastore":
            emulator = DATASTORE_027["emulator"]
            request["datastore"] = {"project": PROJECT, "namespace": NAMESPACE_027}
            env["DATASTORE_EMULATOR_HOST"] = emulator.host
        return drive_027(python_027, request, tmp_path, env)

    return run


@pytest.fixture
def datastore_027(python_027: Path, datastore_proc: DatastoreEmulator) -> Iterator[str]:
    """The emulator, wiped, as the ``datastore`` fallback of 0.27's side; the URL of this
    library's ``datastore://`` fallback on it, in the same namespace."""
    check = [str(python_027), "-I", "-c", "import google.cloud.datastore"]
    if subprocess.run(check, capture_output=True).returncode:
        pytest.skip(
            "google-cloud-datastore is not installed in .venv-dbdaora027: scripts/test "
            "installs it beside dbdaora 0.27"
        )
    datastore_proc.reset()
    DATASTORE_027["emulator"] = datastore_proc
    yield datastore_proc.url(NAMESPACE_027, timeout=30)
    DATASTORE_027.clear()


async def _repositories(url: str, fallback: Any) -> list[Any]:
    memory = await make_redis_data_source(url)
    return [
        cls(memory_data_source=memory, fallback_data_source=fallback, expire_time=60)
        for cls in (ProfileRepository, FollowRepository, PlaylistRepository)
    ]


@pytest.mark.parametrize("fallback_side", FALLBACKS)
async def test_what_027_writes_this_library_reads(
    fallback_side: tuple[str, Any],
    run_027: Run027,
    redis_proc: RedisServer,
    raw_redis: redis.Redis,
) -> None:
    """0.27's hashes, composite-key hash, sorted set and not-found markers read as the same
    entities here, from Redis alone (this library's fallback is never asked)."""
    run_027(
        fallback_side[0],
        [
            ["add", "profile", _plain(PROFILE)],
            ["add", "follow", _plain(FOLLOW)],
            ["add", "playlist", {"id": "pl", "data": MEMBERS}],
            ["get", "profile", ["ghost"], {}],
            ["get", "playlist", ["ghost"], {}],
        ],
    )
    assert set(raw_redis.keys()) == {
        b"profile:p1",
        b"follow:ann:bob",
        b"playlist:pl",
        b"profile:not-found:ghost",
        b"playlist:not-found:ghost",
    }
    fallback = fallback_side[1]()
    profiles, follows, playlists = await _repositories(redis_proc.url, fallback)
    await fallback.put_many(ProfileRepository.meta, ["ghost"], [GHOST])
    await fallback.add_members(PlaylistRepository.meta, "ghost", [("x", 1.0)], None)

    assert await profiles.query("p1").entity == PROFILE
    assert await follows.query("ann", "bob").entity == FOLLOW
    assert await playlists.query("pl", withscores=True, withmaxsize=True).entity == Playlist(
        id="pl", data=[(b"m1", 1.0), (b"m2", 2.5), (b"m3", 4.0)], max_size=3
    )
    page = await playlists.query("pl", reverse=True, page=2, page_size=2).entity
    assert page == Playlist(id="pl", data=[b"m1"])
    with pytest.raises(EntityNotFoundError):
        await profiles.query("ghost").entity
    with pytest.raises(EntityNotFoundError):
        await playlists.query("ghost").entity
    for repository in (profiles, follows, playlists):
        assert all(s["fallback_reads"] == 0 for s in repository.session.stats()["models"].values())
    await profiles.close()


@pytest.mark.parametrize("fallback_side", FALLBACKS)
async def test_what_this_library_writes_027_reads(
    fallback_side: tuple[str, Any], run_027: Run027, redis_proc: RedisServer
) -> None:
    """0.27 reads this library's hashes, composite-key hash and sorted set as the same
    entities, and takes its not-found marker over a fallback that holds the entity."""
    profiles, follows, playlists = await _repositories(redis_proc.url, fallback_side[1]())
    await profiles.add(PROFILE, dataclasses.replace(PROFILE, id="p2", nick="an", tags=[]))
    await follows.add(FOLLOW)
    await playlists.add(Playlist(id="pl", data=MEMBERS))
    with pytest.raises(EntityNotFoundError):
        await profiles.query("ghost").entity
    await profiles.close()

    results = run_027(
        fallback_side[0],
        [
            ["get", "profile", ["p1"], {}],
            ["get", "profile", ["p2"], {}],
            ["get", "follow", ["ann", "bob"], {}],
            ["get", "playlist", ["pl"], {"withscores": True, "withmaxsize": True}],
            ["get", "playlist", ["pl"], {"min_score": 2, "reverse": True}],
            ["seed_fallback", "profile", _plain(GHOST)],
            ["get", "profile", ["ghost"], {}],
        ],
    )
    assert results == [
        _plain(PROFILE),
        _plain(dataclasses.replace(PROFILE, id="p2", nick="an", tags=[])),
        _plain(FOLLOW),
        {"id": "pl", "data": [["m1", 1.0], ["m2", 2.5], ["m3", 4.0]], "max_size": 3},
        {"id": "pl", "data": ["m3", "m2"], "max_size": None},
        None,
        {"not_found": True},
    ]


# -- geospatial sets (Redis leg) -------------------------------------------------------

PLACES = [["louvre", 2.3376, 48.8606], ["eiffel", 2.2945, 48.8584], ["orsay", 2.3266, 48.86]]
NEAR = {"latitude": 48.8566, "longitude": 2.3522, "max_distance": 5}


@dataclasses.dataclass
class Place:
    city: str
    data: Any


class PlaceRepository(GeoSpatialRepository[Place, str]):
    key_attrs = ("city",)
    entity_cls = Place


class Shop(GeoModel):
    city: str = Key()
    name: str = GeoMember()
    latitude: float = Latitude()
    longitude: float = Longitude()

    class Meta:
        key_name = "place"


async def test_geo_sets_027_writes_read_here_unchanged(
    run_027: Run027, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27's GEOADD sets read here, through the 0.27 names and a declared GeoModel, as
    0.27 itself reads them: same members, distances and coordinates, from Redis alone."""
    results = run_027(
        "dict",
        [
            *(["add", "place", {"city": "paris", "data": place}] for place in PLACES),
            ["get", "place", ["paris"], NEAR],
            ["get", "place", ["paris"], {**NEAR, "distance_unit": "mi", "count": 2}],
        ],
    )
    assert set(raw_redis.keys()) == {b"place:paris"}
    places = PlaceRepository(
        memory_data_source=await make_redis_data_source(redis_proc.url),
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )
    ours = [
        await places.query("paris", **NEAR).entity,
        await places.query("paris", **NEAR, distance_unit="mi", count=2).entity,
    ]
    # 0.27 sent GEORADIUS without a sort (Redis's cell order) unless COUNT implied ASC;
    # here the members come nearest first.
    nearest = sorted(results[-2]["data"], key=lambda member: member[1])
    assert [_plain(entity) for entity in ours] == [{**results[-2], "data": nearest}, results[-1]]
    async with Session(memory=redis_proc.url, fallback="memory://") as session:
        found = await Shop.objects.using(session).near(
            "paris", latitude=NEAR["latitude"], longitude=NEAR["longitude"], radius=5
        )
        assert [[s.name, d, [s.longitude, s.latitude]] for s, d in found] == [
            [member, dist, coord] for member, dist, _, coord in nearest
        ]
        assert session.stats()["models"]["Shop"]["fallback_reads"] == 0
    assert places.session.stats()["models"]["Place"]["fallback_reads"] == 0
    await places.close()


async def test_geo_sets_written_here_027_reads(
    run_027: Run027, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """0.27's radius query reads a set written here as it reads its own."""
    async with Session(memory=redis_proc.url, fallback="memory://") as session:
        await Shop.objects.using(session).add(
            *(Shop(city="paris", name=n, longitude=lon, latitude=lat) for n, lon, lat in PLACES)
        )
        ours = await Shop.objects.using(session).near(
            "paris", latitude=NEAR["latitude"], longitude=NEAR["longitude"], radius=5
        )
    (theirs,) = run_027("dict", [["get", "place", ["paris"], NEAR]])
    assert sorted(theirs["data"], key=lambda member: member[1]) == [
        [s.name, d, None, [s.longitude, s.latitude]] for s, d in ours
    ]


# -- flags: 0.27's boolean repositories ---------------------------------------------------

SEEN = Seen("ann", "7")


@pytest.fixture(params=["dict", "datastore"])
def boolean_fallbacks(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    """(0.27's fallback name, this library's fallback factory): each side its own dict, or
    both on one Datastore emulator (0.27's DatastoreBooleanRepository against
    ``datastore://``), where what one side writes the other reads."""
    if request.param == "dict":
        yield "dict", DictFallbackDataSource
        return
    url = request.getfixturevalue("datastore_027")
    yield "datastore", lambda: url


async def _boolean_repositories(url: str, fallback: Any) -> tuple[Any, Any]:
    memory = await make_redis_data_source(url)
    return (
        SeenRepository(memory_data_source=memory, fallback_data_source=fallback, expire_time=60),
        LikedRepository(memory_data_source=memory, fallback_data_source=fallback, expire_time=60),
    )


async def test_flags_027_writes_this_library_reads(
    boolean_fallbacks: tuple[str, Any],
    run_027: Run027,
    redis_proc: RedisServer,
    raw_redis: redis.Redis,
) -> None:
    """0.27's ``1`` and its remembered misses (``0``, from a read and from a delete) read
    as the same flags here, from Redis alone; its fallback records too, after FLUSHALL."""
    name, fallback = boolean_fallbacks
    run_027(
        name,
        [
            ["add", "seen", _plain(SEEN)],
            ["add", "liked", {"id": "x"}],
            ["add", "liked", {"id": "y"}],
            ["delete", "liked", ["y"]],
            ["get", "liked", ["ghost"], {}],
        ],
    )
    assert {key: raw_redis.get(key) for key in raw_redis.keys("*")} == {
        b"seen:ann:7": b"1",
        b"liked:x": b"1",
        b"liked:y": b"0",
        b"liked:ghost": b"0",
    }
    assert 55 < raw_redis.ttl(b"liked:ghost") <= 60
    seen, liked = await _boolean_repositories(redis_proc.url, fallback())
    assert await seen.query("ann", "7").entity == "7"
    assert [e async for e in liked.query(many=["x", "y", "ghost"]).entities] == ["x"]
    with pytest.raises(EntityNotFoundError):
        await liked.query("y").entity
    assert seen.session.stats()["models"]["Seen"]["fallback_reads"] == 0
    if name == "datastore":  # one fallback for both: 0.27's records read through
        raw_redis.flushall()
        assert await seen.query(user="ann", item="7").entity == "7"
        assert [e async for e in liked.query(many=["x", "y"]).entities] == ["x"]
        assert raw_redis.get(b"seen:ann:7") == b"1" and raw_redis.get(b"liked:y") == b"0"
    await seen.close()


async def test_flags_this_library_writes_027_reads(
    boolean_fallbacks: tuple[str, Any], run_027: Run027, redis_proc: RedisServer
) -> None:
    """0.27 reads this library's set flags and its remembered misses, which win over a
    fallback record 0.27 seeds; after FLUSHALL, from a shared fallback, the same."""
    name, fallback = boolean_fallbacks
    seen, liked = await _boolean_repositories(redis_proc.url, fallback())
    await seen.add(SEEN)
    await liked.add(Liked("x"), Liked("y"))
    await liked.query("y").delete
    with pytest.raises(EntityNotFoundError):
        await liked.query("ghost").entity
    await seen.close()
    ops: list[Any] = [
        ["get", "seen", ["ann", "7"], {}],
        ["get", "liked", ["x"], {}],
        ["get", "liked", ["y"], {}],
        ["seed_fallback", "liked", {"id": "ghost"}],
        ["get", "liked", ["ghost"], {}],
    ]
    assert run_027(name, ops) == ["7", "x", {"not_found": True}, None, {"not_found": True}]
    if name == "datastore":
        redis.Redis.from_url(redis_proc.url).flushall()
        ops = [["get", "seen", ["ann", "7"], {}], ["get", "liked", ["y"], {}]]
        assert run_027(name, ops) == ["7", {"not_found": True}]
