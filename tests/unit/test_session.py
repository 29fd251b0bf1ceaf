"""The Session: in-process cache, circuit breakers, outages through memory://, stats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import pytest

from dbdaora import (
    BackendError,
    ConfigurationError,
    EntityNotFoundError,
    Session,
    ValidationError,
    configure,
)
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.meta import ModelMeta
from tests.support.models import Person, Ranking
from tests.support.raw import RawView


class CountingFallback(DictFallback):
    """A dict fallback that counts reads and can be slowed down."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.reads = 0
        self.delay = delay

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        self.reads += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super().get_many(meta, names)


def _cached(store: Any, **options: Any) -> Session:
    # The cache without client tracking (tests/backends/redis/test_tracking.py has it):
    # these tests pin what it keeps after the session's own writes and Redis-side deletes.
    return Session(
        memory=store,
        fallback=CountingFallback(),
        cache={"ttl": 60, "max_size": 100, "tracking": False},
        **options,
    )


async def test_cache_answers_repeated_reads(backend: tuple[Any, RawView]) -> None:
    """A cached entity is answered without Redis, as an equal copy."""
    session = _cached(backend[0])
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    first = await people.get("a")
    backend[1].delete(b"person:a")
    second = await people.get("a")
    assert second == first and second is not first
    assert session.stats()["models"]["Person"]["cache_hits"] == 2  # add filled the cache
    second.name = "changed"
    assert (await people.get("a")).name == "A"
    await session.close()


async def test_cache_key_covers_fields(backend: tuple[Any, RawView]) -> None:
    """A partial read never answers a full read, nor another field set."""
    session = _cached(backend[0])
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A", age=7))
    session.cache.backend._entries.clear()  # type: ignore[union-attr] # cache is set
    assert await people.get("a", fields=["name"]) == Person(id="a", name="A", age=0)
    assert await people.get("a") == Person(id="a", name="A", age=7)
    assert (await people.get("a", fields=["age"])).age == 7
    assert await people.get_many(["a"], fields=["name"]) == [Person(id="a", name="A", age=0)]
    await session.close()


async def test_misses_are_cached(backend: tuple[Any, RawView]) -> None:
    """A not-found answer is cached, distinct from nothing cached."""
    session = _cached(backend[0])
    people = Person.objects.using(session)
    with pytest.raises(EntityNotFoundError):
        await people.get("ghost")
    backend[1].delete(b"person:not-found:ghost")
    await session.fallback.put_many(Person._meta, ["ghost"], [Person(id="ghost", name="G")])
    with pytest.raises(EntityNotFoundError):
        await people.get("ghost")
    assert not await people.exists("ghost")
    assert await people.get_many(["ghost"]) == []
    stats = session.stats()["models"]["Person"]
    assert stats["cache_hits"] == 3 and stats["not_found"] == 3
    await session.close()


async def test_writes_update_the_cache_at_once(backend: tuple[Any, RawView]) -> None:
    """add replaces and delete drops the cached entry: no stale read of one's own write."""
    session = _cached(backend[0])
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="old"))
    assert (await people.get("a")).name == "old"
    assert (await people.get("a", fields=["name"])).name == "old"
    await people.add(Person(id="a", name="new"))
    assert (await people.get("a")).name == "new"
    assert (await people.get("a", fields=["name"])).name == "new"
    await people.delete("a")
    with pytest.raises(EntityNotFoundError):
        await people.get("a")
    with pytest.raises(EntityNotFoundError):
        await people.get("a", fields=["name"])
    await people.add(Person(id="a", name="back"))
    assert await people.exists("a")
    await session.close()


async def test_sorted_set_answers_are_cached_and_invalidated(backend: tuple[Any, RawView]) -> None:
    """Sorted-set queries are cached per query and dropped by add, remove and delete."""
    session = _cached(backend[0])
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b", player="ann", points=1))
    assert [r.player for r in await rankings.get("b")] == ["ann"]
    assert await rankings.count("b") == 1
    await rankings.add(Ranking(board="b", player="bob", points=2))
    assert [r.player for r in await rankings.range("b", 0, -1, reverse=True)] == ["bob", "ann"]
    assert [r.player for r in await rankings.get("b")] == ["ann", "bob"]
    await rankings.remove("b", "ann")
    assert await rankings.count("b") == 1
    await rankings.delete("b")
    assert not await rankings.exists("b")
    await session.close()


async def test_cache_is_bounded() -> None:
    """Inserting max_size + 1000 keys leaves max_size entries, the most recent ones."""
    session = Session(cache={"ttl": 60, "max_size": 500})
    people = Person.objects.using(session)
    await people.add(*(Person(id=f"p{i}", name="x") for i in range(1500)))
    await people.get_many([f"p{i}" for i in range(1500)])
    assert len(session.cache.backend) == 500  # type: ignore[union-attr] # cache is set
    hits = session.stats()["models"]["Person"]["cache_hits"]
    await people.get("p999")  # the last one get_many cached
    await people.get("p0")  # long evicted
    assert session.stats()["models"]["Person"]["cache_hits"] == hits + 1


async def test_cache_entries_expire() -> None:
    """An entry older than the cache TTL is read again."""
    session = Session(cache={"ttl": 0.05, "max_size": 10})
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    await people.get("a")
    await asyncio.sleep(0.08)
    await people.get("a")
    stats = session.stats()["models"]["Person"]
    assert stats["cache_hits"] == 1 and stats["redis_hits"] == 1


async def test_single_flight(backend: tuple[Any, RawView]) -> None:
    """Concurrent reads of one missing key cause one fallback read; all get the answer."""
    fallback = CountingFallback(delay=0.05)
    session = Session(memory=backend[0], fallback=fallback)
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="A")])
    people = Person.objects.using(session)
    results = await asyncio.gather(*(people.get("a") for _ in range(20)), people.get_many(["a"]))
    assert fallback.reads == 1
    assert results[:20] == [Person(id="a", name="A")] * 20 and results[20] == [
        Person(id="a", name="A")
    ]
    await session.close()


async def test_single_flight_survives_a_cancelled_caller() -> None:
    """Cancelling the caller that started a read leaves the others their answer."""
    fallback = CountingFallback(delay=0.05)
    session = Session(fallback=fallback)
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="A")])
    people = Person.objects.using(session)
    first = asyncio.ensure_future(people.get("a"))
    await asyncio.sleep(0.01)
    others = asyncio.gather(*(people.get("a") for _ in range(3)))
    first.cancel()
    assert await others == [Person(id="a", name="A")] * 3
    assert fallback.reads == 1


class SnapshotFallback(DictFallback):
    """A dict fallback whose reads take what it holds at once, then answer late."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        found = await super().get_many(meta, names)
        await asyncio.sleep(self.delay)
        return found

    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        found = await super().get_members(meta, name)
        await asyncio.sleep(self.delay)
        return found


async def test_a_read_after_a_write_never_joins_an_older_read() -> None:
    """A read that starts after add or delete returned starts its own fallback read."""
    store = InProcessRedis()
    store.down = True  # every read goes to the fallback, through single flight
    session = Session(memory=store, fallback=SnapshotFallback(delay=0.2), breaker=None)
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="old"))
    older = asyncio.ensure_future(people.get("a"))
    await asyncio.sleep(0.05)  # its fallback read has taken "old" and is under way
    await people.add(Person(id="a", name="new"))
    assert (await people.get("a")).name == "new"
    assert (await older).name == "old"  # it started before the write: that is its answer
    before_delete = asyncio.ensure_future(people.get_many(["a"]))
    await asyncio.sleep(0.05)
    await people.delete("a")
    assert await people.get_many(["a"]) == []
    assert [p.name for p in await before_delete] == ["new"]


async def test_a_sorted_set_read_after_a_write_never_joins_an_older_read() -> None:
    """A range that starts after add returned starts its own fallback read."""
    store = InProcessRedis()
    store.down = True
    session = Session(memory=store, fallback=SnapshotFallback(delay=0.2), breaker=None)
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b", player="ann", points=1))
    older = asyncio.ensure_future(rankings.get("b"))
    await asyncio.sleep(0.05)
    await rankings.add(Ranking(board="b", player="bob", points=2))
    assert [r.player for r in await rankings.get("b")] == ["ann", "bob"]
    assert [r.player for r in await older] == ["ann"]


async def test_a_read_older_than_a_write_leaves_the_cache_to_the_write() -> None:
    """A read that started before add or delete and ends after it caches nothing."""
    store = InProcessRedis()
    store.down = True
    fallback = SnapshotFallback(delay=0.2)
    session = Session(
        memory=store, fallback=fallback, breaker=None, cache={"ttl": 60, "max_size": 100}
    )
    people = Person.objects.using(session)
    await fallback.put_many(Person._meta, ["a", "b"], [Person(id="a", name="old")] * 2)
    older = asyncio.gather(people.get("a"), people.get_many(["b"]))
    await asyncio.sleep(0.05)
    await people.add(Person(id="a", name="new"))
    await people.delete("b")
    assert (await older)[0].name == "old"
    assert (await people.get("a")).name == "new"
    assert await people.get_many(["b"]) == []
    assert session.stats()["models"]["Person"]["cache_hits"] == 2


async def test_a_sorted_set_read_older_than_a_write_leaves_the_cache_to_the_write() -> None:
    """A range that started before add and ends after it does not cache its older answer."""
    store = InProcessRedis()
    store.down = True
    fallback = SnapshotFallback(delay=0.2)
    session = Session(
        memory=store, fallback=fallback, breaker=None, cache={"ttl": 60, "max_size": 100}
    )
    rankings = Ranking.objects.using(session)
    await fallback.add_members(Ranking._meta, "b", [("ann", 1.0)], None)
    older = asyncio.ensure_future(rankings.get("b"))
    await asyncio.sleep(0.05)
    await rankings.add(Ranking(board="b", player="bob", points=2))
    assert [r.player for r in await older] == ["ann"]
    assert [r.player for r in await rankings.get("b")] == ["ann", "bob"]


def _down_session(**options: Any) -> tuple[Session, InProcessRedis]:
    store = InProcessRedis()
    options.setdefault("breaker", {"fail_max": 3, "reset_timeout": 0.2})
    return Session(memory=store, fallback=DictFallback(), **options), store


async def test_redis_down_reads_and_writes_go_to_the_fallback() -> None:
    """With memory:// down, get, get_many, exists, add and delete all succeed."""
    session, store = _down_session()
    people, rankings = Person.objects.using(session), Ranking.objects.using(session)
    await people.add(Person(id="a", name="A"), Person(id="b", name="B"))
    await rankings.add(Ranking(board="r", player="p", points=1))
    store.down = True
    assert await people.get("a") == Person(id="a", name="A")
    assert (await people.get("a", fields=["name"])).name == "A"
    assert [p.id for p in await people.get_many(["b", "x", "a"])] == ["b", "a"]
    assert await people.exists("a") and not await people.exists("x")
    await people.add(Person(id="c", name="C"))
    await people.delete("b")
    assert [p.id for p in await people.get_many(["a", "b", "c"])] == ["a", "c"]
    await rankings.add(Ranking(board="r", player="q", points=2))
    assert [r.player for r in await rankings.range("r", 0, 0, reverse=True)] == ["q"]
    assert await rankings.count("r") == 2
    with pytest.raises(EntityNotFoundError):
        await people.get("b")
    assert session.stats()["breakers"]["memory"] == "open"


async def test_keys_written_during_an_outage_are_deleted_when_redis_is_back() -> None:
    """Redis never serves a value older than a write acknowledged while it was down."""
    session, store = _down_session(breaker=None)
    people, rankings = Person.objects.using(session), Ranking.objects.using(session)
    await people.add(Person(id="a", name="old"), Person(id="d", name="doomed"))
    await rankings.add(Ranking(board="r", player="p", points=1))
    store.down = True
    await people.add(Person(id="a", name="new"))
    await people.delete("d")
    await rankings.add(Ranking(board="r", player="q", points=2))
    store.down = False
    assert store.raw(b"person:a") is not None  # the stale copy is still there...
    assert (await people.get("a")).name == "new"  # ...but is deleted before any read
    with pytest.raises(EntityNotFoundError):
        await people.get("d")
    assert [r.player for r in await rankings.get("r")] == ["p", "q"]


async def test_outage_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Breaker state changes are logged on the dbdaora logger."""
    session, store = _down_session()
    store.down = True
    with caplog.at_level(logging.WARNING, logger="dbdaora"):
        for _ in range(3):
            with pytest.raises(EntityNotFoundError):
                await Person.objects.using(session).get("x")
    assert "circuit breaker memory memory://: closed -> open" in caplog.text


async def test_breaker_trips_half_opens_and_closes() -> None:
    """fail_max failures open it; after reset_timeout one trial call closes it again."""
    session, store = _down_session()
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    store.down = True
    for _ in range(3):
        assert (await people.get("a")).name == "A"
    assert session.stats()["breakers"]["memory"] == "open"
    store.down = False
    assert (await people.get("a")).name == "A"
    assert session.stats()["breakers"]["memory"] == "open"  # still within reset_timeout
    await asyncio.sleep(0.25)
    assert (await people.get("a")).name == "A"
    assert session.stats()["breakers"]["memory"] == "closed"


async def test_business_errors_do_not_trip_the_breaker() -> None:
    """Not-found answers and bad input leave the breakers closed."""
    session, _ = _down_session()
    people = Person.objects.using(session)
    for _ in range(10):
        with pytest.raises(EntityNotFoundError):
            await people.get("nobody")
        with pytest.raises(ValidationError):
            await people.get("")
    assert session.stats()["breakers"] == {"memory": "closed", "fallback": "closed"}


async def test_stats_count_each_path() -> None:
    """stats() counts cache hits, Redis hits, misses, fallback reads and writes, not-found."""
    session = Session(cache={"ttl": 60, "max_size": 10})
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    session.cache.backend._entries.clear()  # type: ignore[union-attr] # cache is set
    await people.get("a")
    await people.get("a")
    with pytest.raises(EntityNotFoundError):
        await people.get("x")
    assert session.stats() == {
        "models": {
            "Person": {
                "cache_hits": 1,
                "redis_hits": 1,
                "misses": 1,
                "fallback_reads": 1,
                "fallback_writes": 1,
                "not_found": 1,
                "errors": 0,
            }
        },
        "breakers": {"memory": "closed", "fallback": "closed"},
        "cache": {
            "tracking": False,  # memory:// cannot track
            "hits": 1,
            "misses": 2,
            "hit_ratio": 1 / 3,
            "invalidations": 0,
            "flushes": 0,
            "entries": 2,
        },
    }


def test_session_options_come_from_settings() -> None:
    """configure() sets cache, breaker and memory_timeout for sessions made afterwards."""
    configure(cache={"ttl": 2}, breaker={"fail_max": 9}, memory_timeout=0.1)
    session = Session()
    assert session.cache is not None and session.cache.backend.max_size == 10_000
    assert session.memory_breaker is not None and session.memory_breaker.fail_max == 9
    assert session.memory_timeout == 0.1
    assert Session(cache=None, breaker=None).cache is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cache": {"ttl": 0}}, r"cache: ttl must be a positive number, got 0"),
        ({"cache": {"size": 3}}, r"cache: unknown option\(s\) \['size'\]"),
        ({"cache": {"tracking": 1}}, r"cache: tracking must be None, True or False, got 1"),
        ({"cache": 5}, r"cache must be a dict or None, got 5"),
        ({"breaker": {"fail_max": 0}}, r"breaker: fail_max must be a positive int, got 0"),
        ({"memory_timeout": -1}, r"memory_timeout must be a positive number or None, got -1"),
    ],
)
def test_bad_session_options(options: dict[str, Any], message: str) -> None:
    """Bad options fail at once, naming the option."""
    with pytest.raises(ConfigurationError, match=message):
        Session(**options)


async def test_hung_store_is_bounded_by_memory_timeout() -> None:
    """A Redis call that never answers gives up after memory_timeout; the fallback answers."""

    class Hung(InProcessRedis):
        async def hgetall(self, key: bytes) -> dict[bytes, bytes]:
            await asyncio.sleep(3600)
            return {}

    fallback = DictFallback()
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="A")])
    session = Session(memory=Hung(), fallback=fallback, memory_timeout=0.05)
    started = time.monotonic()
    assert (await Person.objects.using(session).get("a")).name == "A"
    assert time.monotonic() - started < 0.5


async def test_a_batch_committed_in_part_updates_only_the_committed_copies() -> None:
    """A batch the fallback took in part: the committed record's Redis copy is updated,
    the refused one's is kept (still true)."""

    class Partial(DictFallback):
        failing = False

        async def put_many(self, meta: ModelMeta, names: Sequence[str], entities: Any) -> None:
            if not self.failing:
                return await super().put_many(meta, names, entities)
            await super().put_many(meta, names[:1], entities[:1])  # one commit of two landed
            raise BackendError("second commit failed", url=self.url, written=names[:1])

    store, fallback = InProcessRedis(), Partial()
    session = Session(memory=store, fallback=fallback)
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="old"), Person(id="b", name="old"))
    fallback.failing = True
    with pytest.raises(BackendError, match="second commit failed"):
        await people.add(Person(id="a", name="new"), Person(id="b", name="new"))
    assert store.raw(b"person:a")[b"name"] == b"new"  # type: ignore[index]
    assert store.raw(b"person:b")[b"name"] == b"old"  # type: ignore[index]
    assert (await people.get("a")).name == "new"
    assert (await people.get("b")).name == "old"


def test_malformed_urls_are_configuration_errors() -> None:
    """A URL that does not parse is a ConfigurationError, not a ValueError."""
    with pytest.raises(ConfigurationError, match="malformed URL"):
        Session(fallback="memory://u:p@[oops/db")
