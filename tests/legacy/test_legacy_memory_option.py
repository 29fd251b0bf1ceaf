"""0.27's ``memory=False`` queries and ``memory=``/``memory_always=`` on add, on the hash,
sorted-set, boolean and geospatial repositories and services, over memory:// and real Redis."""

from __future__ import annotations

from typing import Any

import pytest

from dbdaora import (
    DictFallbackDataSource,
    EntityNotFoundError,
    GeoMember,
    GeoPoint,
    GeoSpatialEntity,
    GeoSpatialRepository,
    ValidationError,
    make_boolean_service,
    make_hash_service,
    make_sorted_set_service,
)
from tests.support.legacy_entities import (
    Fake,
    FakeRepository,
    Person,
    PersonRepository,
    Playlist,
    PlaylistRepository,
)
from tests.support.raw import RawView

Source = tuple[Any, RawView]


def _repository(cls: type[Any], legacy_memory: Source) -> Any:
    return cls(
        memory_data_source=legacy_memory[0],
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )


def _factory(value: Any) -> Any:
    async def make() -> Any:
        return value

    return make


async def test_hash_query_memory_false_reads_the_fallback_alone(legacy_memory: Source) -> None:
    """entity, entities and exists with memory=False answer from the fallback: a changed
    Redis copy is not read, a dropped one is not refilled, a miss leaves no marker."""
    repository = _repository(PersonRepository, legacy_memory)
    raw = legacy_memory[1]
    await repository.add(Person("a", "Ann", 1), Person("b", "Bob", 2))
    raw.hset(b"person:a", b"age", b"99")
    assert await repository.query("a").entity == Person("a", "Ann", 99)
    assert await repository.query("a", memory=False).entity == Person("a", "Ann", 1)
    assert await repository.query(id="a", memory=False, fields=["age"]).entity == Person(
        "a",
        None,  # type: ignore[arg-type] # a partial read, as 0.27 gave it
        1,
    )
    raw.delete(b"person:b")
    found = repository.query(many=["b", "nobody", "a"], memory=False).entities
    assert [p async for p in found] == [Person("b", "Bob", 2), Person("a", "Ann", 1)]
    assert await repository.query("b", memory=False).exists is True
    assert await repository.query("nobody", memory=False).exists is False
    with pytest.raises(EntityNotFoundError):
        await repository.query("nobody", memory=False).entity
    assert not raw.exists(b"person:b")
    assert raw.all_keys() == {b"person:a"}  # no fill, no not-found marker
    with pytest.raises(ValidationError):
        await repository.query("a", memory=False, fields=["nope"]).entity


async def test_sorted_set_query_memory_false(legacy_memory: Source) -> None:
    """A memory=False sorted-set query ranks, pages and filters the fallback's set as Redis
    would, with scores and max_size, and leaves Redis as it was."""
    repository = _repository(PlaylistRepository, legacy_memory)
    raw = legacy_memory[1]
    await repository.add(Playlist("p", [("m1", 1), ("m2", 2), ("m3", 3), ("m4", 4)]))
    raw.delete(b"playlist:p")

    async def read(**options: Any) -> Any:
        return await repository.query("p", memory=False, **options).entity

    assert (await read()).data == [b"m1", b"m2", b"m3", b"m4"]
    assert (await read(reverse=True, page=1, page_size=2)).data == [b"m4", b"m3"]
    assert (await read(page=2, page_size=3)).data == [b"m4"]
    page = await read(min_score=2, max_score=3, withscores=True, withmaxsize=True)
    assert (page.data, page.max_size) == ([(b"m2", 2.0), (b"m3", 3.0)], 4)
    with pytest.raises(EntityNotFoundError):
        await read(min_score=10)
    assert await repository.query("p", memory=False).exists is True
    assert await repository.query("q", memory=False).exists is False
    found = repository.query(many=["q", "p"], memory=False, page_size=1).entities
    assert [entity.data async for entity in found] == [[b"m1"]]
    assert raw.all_keys() == set()


async def test_boolean_query_memory_false(legacy_memory: Source) -> None:
    """A memory=False flag query answers from the fallback's records and fills nothing."""
    repository = _repository(FakeRepository, legacy_memory)
    raw = legacy_memory[1]
    await repository.add(Fake("a"))
    raw.delete(b"fake:a")
    assert await repository.query("a", memory=False).entity == "a"
    assert await repository.query("a", memory=False).exists is True
    assert await repository.query("b", memory=False).exists is False
    with pytest.raises(EntityNotFoundError):
        await repository.query("b", memory=False).entity
    found = repository.query(many=["b", "a"], memory=False).entities
    assert [flag async for flag in found] == ["a"]
    assert raw.all_keys() == set()


async def test_services_take_memory_false(legacy_memory: Source) -> None:
    """get_one, get_many and exists pass memory=False through; delete with it still drops
    the Redis copy, so no older copy is served afterwards."""
    hashes = await make_hash_service(
        PersonRepository,
        _factory(legacy_memory[0]),
        _factory(DictFallbackDataSource()),
        60,
    )
    raw = legacy_memory[1]
    await hashes.add(Person("a", "Ann", 1), memory=False)
    assert raw.hgetall(b"person:a")[b"age"] == b"1"  # Redis written all the same
    raw.hset(b"person:a", b"age", b"7")
    assert await hashes.get_one("a", memory=False) == Person("a", "Ann", 1)
    assert [p async for p in hashes.get_many("a", "z", memory=False)] == [Person("a", "Ann", 1)]
    assert await hashes.exists("z", memory=False) is False
    await hashes.delete("a", memory=False)
    assert not raw.exists(b"person:a")
    assert await hashes.exists("a") is False
    sorted_sets = await make_sorted_set_service(
        PlaylistRepository, _factory(legacy_memory[0]), _factory(DictFallbackDataSource()), 60
    )
    await sorted_sets.add(Playlist("p", [("m", 1)]), memory_always=False)
    assert raw.zrange(b"playlist:p") == [(b"m", 1.0)]
    assert (await sorted_sets.get_one("p", memory=False)).data == [b"m"]
    flags = await make_boolean_service(
        FakeRepository, _factory(legacy_memory[0]), _factory(DictFallbackDataSource()), 60
    )
    await flags.add(Fake("x"), memory=False)
    assert raw.get(b"fake:x") == b"1"
    assert await flags.get_one("x", memory=False) == "x"
    assert await flags.exists("y", memory=False) is False
    for service in (hashes, sorted_sets, flags):
        await service.shutdown()


async def test_add_writes_redis_whatever_memory_always_says(legacy_memory: Source) -> None:
    """0.27's default add skipped Redis where the key was absent; here memory_always=False
    writes Redis too, and a later add replaces a cached copy, so reads are never stale."""
    repository = _repository(PersonRepository, legacy_memory)
    raw = legacy_memory[1]
    await repository.add(Person("a", "Ann", 1), memory_always=False)
    assert raw.hgetall(b"person:a")[b"age"] == b"1"
    await repository.add(Person("a", "Ann", 2), memory=False, memory_always=False)
    assert raw.hgetall(b"person:a")[b"age"] == b"2"
    assert await repository.query("a").entity == Person("a", "Ann", 2)


class Stop(GeoSpatialEntity):
    id: str


class StopRepository(GeoSpatialRepository[Stop, str]): ...


async def test_geospatial_query_memory_false(legacy_memory: Source) -> None:
    """A memory=False radius query searches the fallback's points as GEOSEARCH would
    (0.27 answered nothing there), its exists reads the fallback, and Redis is not filled."""
    repository = _repository(StopRepository, legacy_memory)
    raw = legacy_memory[1]
    await repository.add(
        Stop(id="line", data=[GeoMember(b"a", None, None, GeoPoint(2.35, 48.85))]),
        Stop(id="line", data=GeoMember("b", None, None, GeoPoint(2.30, 48.86))),
        memory=False,
    )
    near = {"latitude": 48.85, "longitude": 2.35, "max_distance": 10}
    from_redis = await repository.query("line", **near).entity
    raw.delete(b"stop:line")
    assert await repository.query("line", memory=False, **near).entity == from_redis
    assert [m.member for m in from_redis.data] == [b"a", b"b"]
    with pytest.raises(EntityNotFoundError):
        await repository.query("line", memory=False, latitude=0, longitude=0, max_distance=1).entity
    assert await repository.query("line", memory=False, **near).exists is True
    assert await repository.query("none", memory=False, **near).exists is False
    with pytest.raises(ValidationError):
        await repository.query("line", memory=False, **{**near, "max_distance": -1}).entity
    assert raw.all_keys() == set()
