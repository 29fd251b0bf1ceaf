"""make_hash_service / make_sorted_set_service (0.27's API): cache, breakers, outages."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import pytest

from dbdaora import (
    CacheType,
    ConfigurationError,
    DictFallbackDataSource,
    DictMemoryDataSource,
    EntityNotFoundError,
    GeoSpatialRepository,
    make_boolean_service,
    make_geospatial_service,
    make_hash_service,
    make_sorted_set_service,
)
from tests.support.legacy_entities import (
    FakeRepository,
    Follow,
    FollowRepository,
    Person,
    PersonRepository,
    Playlist,
    PlaylistRepository,
)
from tests.support.raw import RawView

Source = tuple[Any, RawView]


@dataclasses.dataclass
class Place:
    id: str
    data: Any


class PlaceRepository(GeoSpatialRepository[Place, str]): ...


def _factory(value: Any) -> Any:
    async def make() -> Any:
        return value

    return make


async def _service(repository_cls: type[Any], memory: Any, **options: Any) -> Any:
    make = make_sorted_set_service if repository_cls is PlaylistRepository else make_hash_service
    return await make(
        repository_cls,
        memory_data_source_factory=_factory(memory),
        fallback_data_source_factory=_factory(DictFallbackDataSource()),
        repository_expire_time=60,
        **options,
    )


async def test_hash_service(legacy_memory: Source) -> None:
    """get_one, get_many, add, delete and exists, with fields= and a missing id."""
    service = await _service(PersonRepository, legacy_memory[0])
    await service.add(Person("a", "Ann", 1), Person("b", "Bob", 2))
    assert await service.get_one("a") == Person("a", "Ann", 1)
    assert await service.get_one(id="b", fields=["age"]) == Person("b", None, 2)  # type: ignore[arg-type]
    assert [p async for p in service.get_many("b", "nobody", "a")] == [
        Person("b", "Bob", 2),
        Person("a", "Ann", 1),
    ]
    assert await service.exists("a") is True
    await service.delete("a")
    assert await service.exists("a") is False
    with pytest.raises(EntityNotFoundError):
        await service.get_one("a")
    await service.shutdown()


async def test_composite_keys_through_the_service(legacy_memory: Source) -> None:
    """Composite keys go by key attribute to get_one and as tuples to get_many."""
    service = await _service(FollowRepository, legacy_memory[0])
    await service.add(Follow("ann", "bob", 1), Follow("ann", "cid", 2))
    assert await service.get_one(user="ann", other="bob") == Follow("ann", "bob", 1)
    assert [f async for f in service.get_many(("ann", "cid"), ("x", "y"))] == [
        Follow("ann", "cid", 2)
    ]
    await service.delete(user="ann", other="cid")
    assert await service.exists(user="ann", other="cid") is False
    await service.shutdown()


async def test_sorted_set_service(legacy_memory: Source) -> None:
    """The sorted-set service passes the query options through; get_many skips misses."""
    service = await _service(PlaylistRepository, legacy_memory[0])
    await service.add(Playlist(id="p", data=[("a", 1), ("b", 2), ("c", 3)]))
    assert await service.get_one("p", reverse=True, page_size=2, withmaxsize=True) == Playlist(
        id="p", data=[b"c", b"b"], max_size=3
    )
    assert await service.get_one("p", min_score=2, withscores=True) == Playlist(
        id="p", data=[(b"b", 2.0), (b"c", 3.0)]
    )
    assert [p async for p in service.get_many("nobody", "p", max_score=1)] == [
        Playlist(id="p", data=[b"a"])
    ]
    assert await service.exists("p") is True
    await service.delete("p")
    assert await service.exists("p") is False
    await service.shutdown()


async def test_cache_types_configure_the_session_cache() -> None:
    """TTL and LRU evict least recently used, LFU least frequently used; ttl is kept."""
    memory = DictMemoryDataSource()
    cases = [
        (CacheType.TTL, 5, "lru", 5),
        (CacheType.LRU, None, "lru", None),
        (CacheType.LFU, 7, "lfu", 7),
    ]
    for cache_type, ttl, policy, expected_ttl in cases:
        service = await _service(
            PersonRepository, memory, cache_type=cache_type, cache_ttl=ttl, cache_max_size=3
        )
        backend = service.repository.session.cache.backend
        assert (backend.policy, backend.ttl, backend.max_size) == (policy, expected_ttl, 3)
    service = await _service(PersonRepository, memory)
    assert service.repository.session.cache is None


async def test_cached_reads_skip_redis(legacy_memory: Source) -> None:
    """With a cache, a repeated get_one is answered from it; a write through the service
    replaces the cached entity at once."""
    service = await _service(
        PersonRepository,
        legacy_memory[0],
        cache_type=CacheType.TTL,
        cache_ttl=60,
        cache_max_size=100,
    )
    await service.add(Person("a", "Ann", 1))
    legacy_memory[1].delete(b"person:a")
    assert await service.get_one("a") == Person("a", "Ann", 1)  # from the cache, not Redis
    await service.add(Person("a", "Ann", 2))
    assert await service.get_one("a") == Person("a", "Ann", 2)
    assert service.stats()["models"]["Person"]["cache_hits"] == 2
    await service.shutdown()


async def test_bad_service_options() -> None:
    """Cache options 0.27 required, bad values and the wrong repository kind are refused."""
    memory = DictMemoryDataSource()
    with pytest.raises(ConfigurationError, match="needs cache_max_size"):
        await _service(PersonRepository, memory, cache_type=CacheType.LRU)
    with pytest.raises(ConfigurationError, match="needs cache_ttl"):
        await _service(PersonRepository, memory, cache_type=CacheType.TTL, cache_max_size=3)
    with pytest.raises(ConfigurationError, match="max_size must be a positive int"):
        await _service(PersonRepository, memory, cache_type=CacheType.LFU, cache_max_size=0)
    with pytest.raises(ConfigurationError, match="expected a HashRepository subclass"):
        await make_hash_service(
            PlaylistRepository,  # type: ignore[arg-type]
            memory_data_source_factory=_factory(memory),
            fallback_data_source_factory=_factory(DictFallbackDataSource()),
            repository_expire_time=60,
        )


async def test_breaker_and_outage() -> None:
    """With Redis down the service answers and writes through the fallback; the breaker
    opens after cb_failure_threshold failures; once Redis is back the key written during
    the outage is replaced, never served stale."""
    memory = DictMemoryDataSource()
    service = await _service(
        PersonRepository, memory, cb_failure_threshold=2, cb_recovery_timeout=0.2
    )
    breaker = service.repository.session.memory_breaker
    assert (breaker.fail_max, breaker.timeout_duration.total_seconds()) == (2, 0.2)
    await service.add(Person("a", "Ann", 1))
    memory.down = True
    await service.add(Person("a", "Ann", 2))
    assert await service.get_one("a") == Person("a", "Ann", 2)
    assert await service.exists("a") is True
    assert service.stats()["breakers"]["memory"] == "open"
    memory.down = False
    assert memory.raw(b"person:a")[b"age"] == b"1"  # the stale copy, still in Redis
    await asyncio.sleep(0.25)
    assert await service.get_one("a") == Person("a", "Ann", 2)
    assert memory.raw(b"person:a")[b"age"] == b"2"
    assert service.stats()["breakers"]["memory"] == "closed"


async def test_failure_threshold_zero_falls_back_at_once() -> None:
    """cb_failure_threshold=0 (0.27: fall back at the first failure) opens after one failure."""
    memory = DictMemoryDataSource()
    service = await _service(PersonRepository, memory, cb_failure_threshold=0)
    await service.add(Person("a", "Ann", 1))
    memory.down = True
    assert await service.get_one("a") == Person("a", "Ann", 1)
    assert service.stats()["breakers"]["memory"] == "open"


async def test_ttldaora_is_a_ttl_cache_that_never_serves_an_expired_entry(
    legacy_memory: Source,
) -> None:
    """CacheType.TTLDAORA needs cache_ttl and cache_max_size, keeps entries cache_ttl
    seconds, and after that reads Redis (0.27's served an expired entry once more)."""
    service = await _service(
        PersonRepository,
        legacy_memory[0],
        cache_type=CacheType.TTLDAORA,
        cache_ttl=0.3,
        cache_max_size=2,
    )
    backend = service.repository.session.cache.backend
    assert (backend.policy, backend.ttl, backend.max_size) == ("lru", 0.3, 2)
    await service.add(Person("a", "Ann", 1))
    assert await service.get_one("a") == Person("a", "Ann", 1)
    legacy_memory[1].hset(b"person:a", b"age", b"2")
    assert await service.get_one("a") == Person("a", "Ann", 1)  # cached
    await asyncio.sleep(0.4)
    assert await service.get_one("a") == Person("a", "Ann", 2)  # expired: Redis again
    await service.shutdown()
    with pytest.raises(ConfigurationError, match="TTLDAORA needs cache_ttl"):
        await _service(
            PersonRepository,
            DictMemoryDataSource(),
            cache_type=CacheType.TTLDAORA,
            cache_max_size=2,
        )


async def test_027_breaker_arguments_are_checked_on_every_factory() -> None:
    """cb_expected_exception, cb_expected_fallback_exception, logger and the add/delete
    breaker switches are taken by all four factories; a bad one names itself."""
    good: dict[str, Any] = {
        "cb_expected_exception": OSError,
        "cb_expected_fallback_exception": None,
        "logger": logging.getLogger("legacy"),
        "has_add_circuit_breaker": True,
        "has_delete_circuit_breaker": False,
    }
    factories = [
        (make_hash_service, PersonRepository),
        (make_sorted_set_service, PlaylistRepository),
        (make_boolean_service, FakeRepository),
        (make_geospatial_service, PlaceRepository),
    ]
    for make, repository_cls in factories:
        service = await make(
            repository_cls,  # type: ignore[arg-type] # each factory with its own kind
            _factory(DictMemoryDataSource()),
            _factory(DictFallbackDataSource()),
            60,
            cb_failure_threshold=1,
            **good,
        )
        await service.shutdown()
    bad = [
        ("cb_expected_exception", "OSError"),
        ("cb_expected_fallback_exception", 3),
        ("logger", "legacy"),
        ("has_add_circuit_breaker", "yes"),
        ("has_delete_circuit_breaker", None),
        ("cb_expected", OSError),
    ]
    for name, value in bad:
        with pytest.raises(ConfigurationError, match=name):
            await make_hash_service(
                PersonRepository,
                _factory(DictMemoryDataSource()),
                _factory(DictFallbackDataSource()),
                60,
                **{name: value},
            )


async def test_an_outage_still_falls_back_whatever_the_expected_exception() -> None:
    """cb_expected_exception does not narrow what the breaker counts: with Redis down,
    reads still come from the fallback and the breaker opens."""
    memory = DictMemoryDataSource()
    service = await _service(
        PersonRepository, memory, cb_failure_threshold=1, cb_expected_exception=KeyError
    )
    await service.add(Person("a", "Ann", 1))
    memory.down = True
    assert await service.get_one("a") == Person("a", "Ann", 1)
    assert service.stats()["breakers"]["memory"] == "open"
    await service.shutdown()
