"""Data compatibility with dbdaora 0.27, both ways, on a private redis-server.

dbdaora 0.27 runs in its own virtualenv (.venv-dbdaora027, installed from PyPI by
scripts/test) through tests/support/compat027_driver.py. What it writes to Redis — hashes,
a composite-key hash, a sorted set, not-found markers — this library reads as the
same entities; what this library writes, 0.27 reads back. Each side has its own
in-process fallback here, so a marker is shown to win over a fallback that holds
the entity. A shared fallback (Datastore) joins as one more entry of FALLBACKS.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Callable
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
from tests.support.legacy_entities import (
    Follow,
    FollowRepository,
    Playlist,
    PlaylistRepository,
    Profile,
    ProfileRepository,
)
from tests.support.servers import RedisServer

pytestmark = pytest.mark.compat

ROOT = Path(__file__).resolve().parents[2]
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


Run027 = Callable[[str, list[Any]], list[Any]]


@pytest.fixture
def run_027(
    python_027: Path, redis_proc: RedisServer, raw_redis: redis.Redis, tmp_path: Path
) -> Run027:
    """Run operations on dbdaora 0.27 (the private Redis, the named fallback); their results."""

    def run(fallback: str, ops: list[Any]) -> list[Any]:
        # -I: isolated, so the driver imports 0.27, never this checkout's dbdaora.
        result = subprocess.run(
            [str(python_027), "-I", "-W", "ignore", str(DRIVER)],
            input=json.dumps({"url": redis_proc.url, "fallback": fallback, "ops": ops}),
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        results: list[Any] = json.loads(result.stdout)
        return results

    return run


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
