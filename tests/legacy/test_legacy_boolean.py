"""0.27's boolean API (BooleanRepository, DatastoreBooleanRepository, make_boolean_service)
on the flag core, as 0.27's own tests use it, on every Redis side."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.cloud import datastore

from dbdaora import (
    BooleanRepository,
    BooleanService,
    CacheType,
    ConfigurationError,
    DictFallbackDataSource,
    DictMemoryDataSource,
    EntityNotFoundError,
    ValidationError,
    make_boolean_service,
)
from tests.support.datastore_server import DatastoreEmulator
from tests.support.legacy_entities import Fake, FakeRepository, PairFake, PairFakeRepository
from tests.support.raw import RawView

Source = tuple[Any, RawView]


def _factory(value: Any) -> Any:
    async def make() -> Any:
        return value

    return make


async def _service(repository_cls: type[Any], memory: Any, fallback: Any = None) -> Any:
    return await make_boolean_service(
        repository_cls,
        _factory(memory),
        _factory(fallback or DictFallbackDataSource()),
        repository_expire_time=60,
        cache_type=CacheType.TTL,
        cache_ttl=1,
        cache_max_size=2,
        cb_failure_threshold=0,
        cb_recovery_timeout=10,
    )


async def test_repository_reads_what_027_writes(legacy_memory: Source) -> None:
    """``1`` in Redis is the id; nowhere is EntityNotFoundError and ``0`` with the TTL; a
    fallback record {"value": true} reads through and fills ``1``."""
    memory, raw = legacy_memory
    fallback = DictFallbackDataSource()
    repository = FakeRepository(
        memory_data_source=memory, fallback_data_source=fallback, expire_time=60
    )
    raw.set(b"fake:fake", b"1")
    assert await repository.query("fake").entity == "fake"
    with pytest.raises(EntityNotFoundError):
        await repository.query("ghost").entity
    assert raw.get(b"fake:ghost") == b"0"
    ttl = raw.ttl(b"fake:ghost")
    assert ttl is not None and 55 < ttl <= 60
    await fallback.put_many(FakeRepository.meta, ["fb"], [FakeRepository.meta.flag_entity(["fb"])])
    assert await repository.query(id="fb").entity == "fb"
    assert raw.get(b"fake:fb") == b"1"
    await repository.close()


async def test_repository_many_and_027s_not_found_marker(legacy_memory: Source) -> None:
    """many= yields the set ids in order; 0.27's ``<name>:not-found:<id>`` = ``1`` is not
    set, and an id nowhere gets ``0``."""
    memory, raw = legacy_memory
    fallback = DictFallbackDataSource()
    repository = FakeRepository(
        memory_data_source=memory, fallback_data_source=fallback, expire_time=60
    )
    await repository.add(Fake("fake"))
    raw.delete(b"fake:fake")
    raw.set(b"fake:not-found:fake2", b"1")
    entities = [e async for e in repository.query(many=["fake", "fake2", "fake3"]).entities]
    assert entities == ["fake"]
    assert raw.get(b"fake:fake") == b"1" and raw.get(b"fake:fake3") == b"0"
    assert await repository.query("fake").exists and not await repository.query("fake2").exists
    await repository.query("fake").delete
    assert raw.get(b"fake:fake") == b"0"
    with pytest.raises(EntityNotFoundError):
        await repository.query("fake").entity
    await repository.close()


async def test_service_as_027s_tests_use_it(legacy_memory: Source) -> None:
    """add, get_one, get_many, exists, delete; the cache answers a flag Redis lost."""
    memory, raw = legacy_memory
    service = await _service(FakeRepository, memory)
    assert isinstance(service, BooleanService)
    await service.add(Fake("fake"), Fake("fake2"))
    assert await service.get_one("fake") == "fake"
    assert [e async for e in service.get_many("fake", "nope", "fake2")] == ["fake", "fake2"]
    raw.delete(b"fake:fake")
    assert await service.get_one("fake") == "fake"  # from the cache
    assert await service.exists("fake2") and not await service.exists("nope")
    await service.delete("fake")
    with pytest.raises(EntityNotFoundError):
        await service.get_one("fake")
    await service.shutdown()


async def test_service_falls_back_with_redis_down() -> None:
    """With Redis down, the service reads and writes the fallback (0.27's breaker test)."""
    memory = DictMemoryDataSource()
    service = await _service(FakeRepository, memory)
    memory.down = True
    await service.add(Fake("fake"))
    assert await service.get_one("fake") == "fake"
    assert [e async for e in service.get_many("fake", "fake2")] == ["fake"]
    assert service.stats()["breakers"]["memory"] == "open"
    await service.shutdown()


async def test_composite_keys_by_keyword(legacy_memory: Source) -> None:
    """0.27's Datastore tests: key_attrs ('other_id', 'id'), the entity by class keyword,
    ids by position and the leading part by name."""
    memory, raw = legacy_memory
    service = await _service(PairFakeRepository, memory)
    await service.add(PairFake(id="fake", other_id="other_fake"))
    assert raw.get(b"fake:other_fake:fake") == b"1"
    assert await service.get_one("fake", other_id="other_fake") == "fake"
    many = service.get_many("fake", "fake2", other_id="other_fake")
    assert [e async for e in many] == ["fake"]
    await service.delete("fake", other_id="other_fake")
    with pytest.raises(EntityNotFoundError):
        await service.get_one("fake", other_id="other_fake")
    await service.shutdown()


async def test_datastore_records_of_027(datastore_proc: DatastoreEmulator) -> None:
    """A flag 0.27's Datastore repository put (kind 'fake', name 'other_fake:fake',
    {'value': True}) reads as set; add writes that layout, 'value' unindexed."""
    datastore_proc.reset()
    client = datastore_proc.client("legacy")
    old = datastore.Entity(client.key("fake", "other_fake:fake"))
    old.update({"value": True})
    client.put(old)
    service = await _service(
        PairFakeRepository, DictMemoryDataSource(), datastore_proc.url("legacy", timeout=30)
    )
    assert await service.get_one("fake", other_id="other_fake") == "fake"
    await service.add(PairFake(id="fake2", other_id="other_fake"))
    written = client.get(client.key("fake", "other_fake:fake2"))
    assert written is not None and dict(written) == {"value": True}
    assert written.exclude_from_indexes == {"value"}
    many = service.get_many("fake", "fake2", "fake3", other_id="other_fake")
    assert [e async for e in many] == ["fake", "fake2"]
    await service.shutdown()
    client.close()


async def test_bad_input() -> None:
    """Another entity type, missing key parts and a reserved key name are refused."""
    repository = FakeRepository(
        memory_data_source=DictMemoryDataSource(),
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )
    with pytest.raises(ValidationError, match="Fake: expected a Fake instance"):
        await repository.add(PairFake("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="missing key part 'id'"):
        repository.query()

    @dataclasses.dataclass
    class Valued:
        value: str

    with pytest.raises(ConfigurationError, match="key_attrs cannot use the name value"):

        class ValuedRepository(BooleanRepository[Valued, str]):
            key_attrs = ("value",)

    await repository.close()
