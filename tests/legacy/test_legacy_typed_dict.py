"""TypedDict entities on 0.27's hash repositories and services: reads answer dicts,
writes take them, stored as a dataclass entity is; over memory:// and real Redis."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import pytest

from dbdaora import (
    CacheType,
    ConfigurationError,
    DictFallbackDataSource,
    EntityNotFoundError,
    HashRepository,
    ValidationError,
    make_hash_service,
)
from tests.support.raw import RawView

Source = tuple[Any, RawView]


class Person(TypedDict):
    id: str
    name: str
    age: int
    nick: NotRequired[str]


class PersonRepository(HashRepository[Person, str]): ...


class Follow(TypedDict):
    user: str
    other: str
    since: int


class FollowRepository(HashRepository[Follow, str]):
    key_attrs = ("user", "other")


def _repository(cls: type[Any], legacy_memory: Source) -> Any:
    return cls(
        memory_data_source=legacy_memory[0],
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )


async def test_typed_dict_round_trip(legacy_memory: Source) -> None:
    """A dict is written as the hash a dataclass entity makes, and read back as the
    same dict; a key the TypedDict does not require may be left out."""
    repository = _repository(PersonRepository, legacy_memory)
    raw = legacy_memory[1]
    ann: Person = {"id": "a", "name": "Ann", "age": 1}
    bob: Person = {"id": "b", "name": "Bob", "age": 2, "nick": "bobby"}
    await repository.add(ann, bob)
    assert raw.hgetall(b"person:a") == {b"id": b"a", b"name": b"Ann", b"age": b"1"}
    assert raw.hgetall(b"person:b")[b"nick"] == b"bobby"
    assert await repository.query("a").entity == ann
    assert await repository.query(id="b").entity == bob
    assert [p async for p in repository.query(many=["b", "z", "a"]).entities] == [bob, ann]
    assert await repository.query("b", fields=["age"]).entity == {
        "id": "b",
        "name": None,
        "age": 2,
    }
    raw.delete(b"person:a")
    assert await repository.query("a", memory=False).entity == ann
    assert await repository.query("a").entity == ann  # read through, filled
    assert raw.hgetall(b"person:a")[b"name"] == b"Ann"
    await repository.query("a").delete
    with pytest.raises(EntityNotFoundError):
        await repository.query("a").entity


async def test_typed_dict_reads_027_hashes(legacy_memory: Source) -> None:
    """A hash as 0.27 wrote it (a composite key) reads as a dict."""
    repository = _repository(FollowRepository, legacy_memory)
    raw = legacy_memory[1]
    # A first call lets the session check Redis's epoch: on a server that loaded its
    # data from disk (the Sentinel replica promoted by an earlier test) that check
    # deletes the keys written before it.
    await repository.add({"user": "tina", "other": "ann", "since": 1})
    for field, value in ((b"user", b"tina"), (b"other", b"tom"), (b"since", b"7")):
        raw.hset(b"follow:tina:tom", field, value)
    assert await repository.query("tina", "tom").entity == {
        "user": "tina",
        "other": "tom",
        "since": 7,
    }


async def test_typed_dict_bad_input_fails_before_io(legacy_memory: Source) -> None:
    """A missing required key, an unknown key, a wrong type or a non-dict is a
    ValidationError, and nothing is written."""
    repository = _repository(PersonRepository, legacy_memory)
    bad: list[Any] = [
        {"id": "a", "name": "Ann"},
        {"id": "a", "name": "Ann", "age": 1, "other": 2},
        {"id": "a", "name": "Ann", "age": "one"},
        ("a", "Ann", 1),
    ]
    for entity in bad:
        with pytest.raises(ValidationError):
            await repository.add(entity)
    assert legacy_memory[1].all_keys() == set()


def test_typed_dict_key_attrs_must_be_required_keys() -> None:
    """key_attrs naming a key the TypedDict does not require is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="required keys"):

        class NickRepository(HashRepository[Person, str]):
            key_attrs = ("nick",)


async def test_typed_dict_service_with_a_cache(legacy_memory: Source) -> None:
    """A service over a TypedDict repository answers dicts, from its cache too, and each
    caller gets a dict of its own."""

    async def memory() -> Any:
        return legacy_memory[0]

    async def fallback() -> Any:
        return DictFallbackDataSource()

    service = await make_hash_service(
        PersonRepository,
        memory,
        fallback,
        60,
        cache_type=CacheType.LRU,
        cache_max_size=10,
    )
    await service.add({"id": "a", "name": "Ann", "age": 1})
    first = await service.get_one("a")
    first["age"] = 99
    assert await service.get_one("a") == {"id": "a", "name": "Ann", "age": 1}
    assert service.stats()["models"]["Person"]["cache_hits"] >= 1
    assert [p async for p in service.get_many("a", "z")] == [{"id": "a", "name": "Ann", "age": 1}]
    assert await service.exists("a") is True
    await service.shutdown()
