"""HashRepository (0.27's API) over memory:// and a real redis-server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from dbdaora import (
    ConfigurationError,
    DictFallbackDataSource,
    EntityNotFoundError,
    HashRepository,
    ValidationError,
)
from tests.support.legacy_entities import (
    Follow,
    FollowRepository,
    Person,
    PersonRepository,
    Profile,
    ProfileRepository,
)
from tests.support.raw import RawView

Source = tuple[Any, RawView]


def _repository(cls: type[Any], legacy_memory: Source, **options: Any) -> Any:
    return cls(
        memory_data_source=legacy_memory[0],
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
        **options,
    )


async def test_add_then_query_entity(legacy_memory: Source) -> None:
    """add writes the Redis hash person:<id> (every field, 60 s TTL); query(id).entity reads it."""
    repository = _repository(PersonRepository, legacy_memory)
    await repository.add(Person("john_doe", "John Doe", 33))
    raw = legacy_memory[1]
    assert raw.hgetall(b"person:john_doe") == {
        b"id": b"john_doe",
        b"name": b"John Doe",
        b"age": b"33",
    }
    ttl = raw.ttl(b"person:john_doe")
    assert ttl is not None and 55 < ttl <= 60
    assert await repository.query("john_doe").entity == Person("john_doe", "John Doe", 33)
    assert await repository.query(id="john_doe").entity == Person("john_doe", "John Doe", 33)


def test_key_name_comes_from_the_repository_class() -> None:
    """The key name is the repository class name in snake_case without _repository, or `name`."""

    class HTTPLogRepository(HashRepository[Person, str]): ...

    class Renamed(HashRepository[Person, str]):
        name = "people"

    assert PersonRepository.name == "person"
    assert FollowRepository.name == "follow"
    assert HTTPLogRepository.name == "h_t_t_p_log"  # 0.27's rule, so its keys are found
    assert Renamed.name == "people"
    assert PersonRepository.meta.marker_key("x") == b"person:not-found:x"


async def test_types_round_trip(legacy_memory: Source) -> None:
    """float, bool, list, dict and None values come back as written, stored as 0.27 stored them."""
    repository = _repository(ProfileRepository, legacy_memory)
    profile = Profile("p1", "Ann", 1.5, True, ["a", "b"], {"x": 1})
    await repository.add(profile)
    assert legacy_memory[1].hgetall(b"profile:p1") == {
        b"id": b"p1",
        b"name": b"Ann",
        b"score": b"1.5",
        b"active": b"1",
        b"tags": b'["a","b"]',
        b"extra": b'{"x":1}',
    }
    assert await repository.query("p1").entity == profile


async def test_fields_reads_only_those(legacy_memory: Source) -> None:
    """fields=[...] reads those fields; the key comes from the query, the others take defaults."""
    repository = _repository(ProfileRepository, legacy_memory)
    await repository.add(Profile("p1", "Ann", 1.5, True, ["a"], nick="an"))
    partial = await repository.query("p1", fields=["name", "nick"]).entity
    assert partial == Profile("p1", "Ann", None, None, [], {}, "an")  # type: ignore[arg-type]
    people = _repository(PersonRepository, legacy_memory)
    await people.add(Person("a", "Ann", 3))
    assert await people.query("a", fields=["age"]).entity == Person("a", None, 3)  # type: ignore[arg-type]


async def test_composite_keys(legacy_memory: Source) -> None:
    """key_attrs make a composite key user:other, given by position, by name, or both."""
    repository = _repository(FollowRepository, legacy_memory)
    await repository.add(Follow("ann", "bob", 7))
    assert legacy_memory[1].hgetall(b"follow:ann:bob") == {
        b"user": b"ann",
        b"other": b"bob",
        b"since": b"7",
    }
    expected = Follow("ann", "bob", 7)
    assert await repository.query("ann", "bob").entity == expected
    assert await repository.query(user="ann", other="bob").entity == expected
    assert await repository.query("bob", user="ann").entity == expected
    assert await repository.query(other="bob", user="ann", fields=["since"]).entity == expected


async def test_many_yields_the_found_ones_in_order(legacy_memory: Source) -> None:
    """query(many=[...]).entities yields the entities found, in the order asked."""
    people = _repository(PersonRepository, legacy_memory)
    await people.add(Person("a", "Ann", 1), Person("b", "Bob", 2))
    found = [person async for person in people.query(many=["b", "nobody", "a"]).entities]
    assert found == [Person("b", "Bob", 2), Person("a", "Ann", 1)]
    names = [p async for p in people.query(many=["a", "b"], fields=["name"]).entities]
    assert names == [Person("a", "Ann", None), Person("b", "Bob", None)]  # type: ignore[arg-type]
    follows = _repository(FollowRepository, legacy_memory)
    await follows.add(Follow("ann", "bob", 1), Follow("ann", "cid", 2), Follow("x", "y", 3))
    by_prefix = [f async for f in follows.query("ann", many=["cid", "zed", "bob"]).entities]
    assert by_prefix == [Follow("ann", "cid", 2), Follow("ann", "bob", 1)]
    by_tuple = [f async for f in follows.query(many=[("x", "y"), ("ann", "bob")]).entities]
    assert by_tuple == [Follow("x", "y", 3), Follow("ann", "bob", 1)]


async def test_exists_and_delete(legacy_memory: Source) -> None:
    """exists answers True then False; delete drops the hash and leaves a not-found marker."""
    repository = _repository(PersonRepository, legacy_memory)
    await repository.add(Person("a", "Ann", 1))
    assert await repository.query("a").exists is True
    await repository.query("a").delete
    raw = legacy_memory[1]
    assert not raw.exists(b"person:a")
    assert raw.get(b"person:not-found:a") == b"1"
    assert await repository.query("a").exists is False
    with pytest.raises(EntityNotFoundError):
        await repository.query("a").entity


async def test_not_found_leaves_a_marker(legacy_memory: Source) -> None:
    """A miss everywhere raises EntityNotFoundError and sets person:not-found:<id> = 1."""
    repository = _repository(PersonRepository, legacy_memory)
    with pytest.raises(EntityNotFoundError):
        await repository.query("ghost").entity
    assert legacy_memory[1].get(b"person:not-found:ghost") == b"1"
    assert await repository.query("ghost").exists is False


async def test_read_through_from_the_fallback(legacy_memory: Source) -> None:
    """An entity only the fallback holds is read from it and put back into Redis."""
    repository = _repository(PersonRepository, legacy_memory)
    await repository.add(Person("a", "Ann", 1))
    raw = legacy_memory[1]
    raw.delete(b"person:a")
    assert await repository.query("a").entity == Person("a", "Ann", 1)
    assert raw.hgetall(b"person:a")[b"name"] == b"Ann"


async def test_bad_queries_fail_before_io(legacy_memory: Source) -> None:
    """Missing or extra key parts, a wrong key type and a wrong entity are ValidationErrors."""
    repository = _repository(FollowRepository, legacy_memory)
    with pytest.raises(ValidationError, match="missing key part 'other'"):
        repository.query("ann")
    with pytest.raises(ValidationError, match="unexpected query arguments"):
        repository.query("ann", "bob", "cid")
    with pytest.raises(ValidationError, match="unexpected query arguments"):
        repository.query("ann", "bob", other_thing=1)
    with pytest.raises(ValidationError, match="key part must be str"):
        await repository.query("ann", 3).entity
    with pytest.raises(ValidationError, match="expected a Follow instance"):
        await repository.add(Person("a", "Ann", 1))
    with pytest.raises(ValidationError, match="expected int"):
        await repository.add(Follow("ann", "bob", "soon"))  # type: ignore[arg-type]
    assert legacy_memory[1].all_keys() == set()


def test_bad_declarations() -> None:
    """A non-dataclass entity, unknown key_attrs or no entity at all are ConfigurationErrors."""

    class NotADataclass:
        id: str

    with pytest.raises(ConfigurationError, match="must be a dataclass"):

        class Bad(HashRepository[NotADataclass, str]): ...

    with pytest.raises(ConfigurationError, match="key_attrs must name distinct fields"):

        class BadKeys(HashRepository[Person, str]):
            key_attrs = ("id", "nope")

    @dataclass
    class Unsupported:
        id: str
        value: complex

    with pytest.raises(ConfigurationError, match="cannot store values of type complex"):

        class BadType(HashRepository[Unsupported, str]): ...

    with pytest.raises(ConfigurationError, match="names no entity"):
        HashRepository(
            memory_data_source="memory://", fallback_data_source="memory://", expire_time=1
        )
