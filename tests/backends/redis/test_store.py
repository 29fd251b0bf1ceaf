"""The redis:// backend against a real server: failures, URLs, event loops."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis

from dbdaora import BackendError, Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.backends.redis.single import RedisStore
from tests.support import claims
from tests.support.models import Person, Ranking
from tests.support.raw import RawView
from tests.support.servers import RedisServer, free_port


async def test_unreachable_redis_raises_backend_error_with_masked_url() -> None:
    """A refused connection is a BackendError naming the URL without its password."""
    port = free_port()
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{port}/0")
    with pytest.raises(BackendError) as error:
        await store.hgetall(b"person:a")
    assert "hunter2" not in str(error.value)
    assert f"(redis://:***@127.0.0.1:{port}/0)" in str(error.value)
    assert error.value.url == f"redis://:***@127.0.0.1:{port}/0"
    assert isinstance(error.value.__cause__, redis.ConnectionError)
    await store.close()


async def test_sessions_answer_from_the_fallback_when_redis_is_unreachable() -> None:
    """With Redis refusing connections, add and get still work through the fallback."""
    fallback = DictFallback()
    async with Session(memory=f"redis://127.0.0.1:{free_port()}/0", fallback=fallback) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="A"))
        assert await people.get("a") == Person(id="a", name="A")
    assert await fallback.get_many(Person._meta, ["a"]) == [Person(id="a", name="A")]


def test_store_survives_new_event_loops(redis_proc: RedisServer, raw_redis: redis.Redis) -> None:
    """One session used from several asyncio.run calls opens a client per loop."""
    session = Session(memory=redis_proc.url, fallback=DictFallback())
    people = Person.objects.using(session)
    asyncio.run(people.add(Person(id="a", name="A")))
    assert asyncio.run(people.get("a")) == Person(id="a", name="A")
    assert asyncio.run(people.get("a")) == Person(id="a", name="A")
    asyncio.run(session.close())


async def test_large_sorted_set_fill(session: Session) -> None:
    """A set larger than Lua's unpack limit fills Redis in slices."""
    await session.fallback.add_members(
        Ranking._meta, "big", [(f"m{i}", float(i)) for i in range(20_000)], None
    )
    rankings = Ranking.objects.using(session)
    assert await rankings.count("big") == 20_000
    assert [r.player for r in await rankings.range("big", 0, 2, reverse=True)] == [
        "m19999",
        "m19998",
        "m19997",
    ]


async def test_memory_store_down_fails_like_a_lost_connection() -> None:
    """memory:// with down = True raises BackendError caused by a ConnectionError."""
    store = InProcessRedis()
    store.down = True
    with pytest.raises(BackendError, match=r"connection lost \(memory://\)") as error:
        await store.hgetall(b"person:a")
    assert isinstance(error.value.__cause__, ConnectionError)


def _calls(client: redis.Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in client.info("commandstats").items()}


async def test_a_lone_read_through_is_two_round_trips(
    redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """A get alone takes the fill lease with its read: then only the fill follows."""
    fallback = DictFallback()
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="A", age=3)])
    async with Session(memory=redis_proc.url, fallback=fallback) as session:
        people = Person.objects.using(session)
        await people.exists("warm-up")  # opens the connection, loads nothing
        raw_redis.config_resetstat()
        assert (await people.get("a")).age == 3
        calls = _calls(raw_redis)  # counts commands scripts run, too
        # EVALSHA twice (read-or-lease, fill), plus SCRIPT LOAD for each on a new server;
        # the one HGETALL and the one SET (the lease) ran inside the first.
        assert calls["cmdstat_evalsha"] == 2 + calls.get("cmdstat_script|load", 0)
        assert calls["cmdstat_hgetall"] == 1
        assert calls["cmdstat_set"] == 1
        assert raw_redis.hget("person:a", "name") == b"A"
        assert raw_redis.exists("person:not-found:a") == 0


async def test_gets_batched_together_lease_their_misses_in_one_more_trip(
    redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """Gathered gets read with HGETALL; the misses' leases go out together afterwards."""
    fallback = DictFallback()
    ids = [f"m{i}" for i in range(10)]
    await fallback.put_many(Person._meta, ids, [Person(id=i, name=i) for i in ids])
    async with Session(memory=redis_proc.url, fallback=fallback) as session:
        people = Person.objects.using(session)
        await session.repair()  # the first check (and sweep) of a new Redis, not counted
        raw_redis.config_resetstat()
        found = await asyncio.gather(*(people.get(i) for i in ids))
        assert [p.id for p in found] == ids
        calls = _calls(raw_redis)
        assert calls["cmdstat_hgetall"] == 10
        assert calls["cmdstat_set"] == 10  # the leases, SET NX GET
        # Scripts only for the fills (one per entity), none for the reads.
        assert calls["cmdstat_evalsha"] == 10 + calls.get("cmdstat_script|load", 0)
        assert all(raw_redis.hget(f"person:{i}", "name") == i.encode() for i in ids)


async def test_read_or_lease_answers_alike_on_every_redis_side(
    backend: tuple[Any, RawView],
) -> None:
    """A hit is the hash; a miss takes the lease, and the next one sees it held."""
    store, view = backend
    await claims.put_hashes(store, [(b"person:a", b"person:not-found:a", {b"name": "A"})], None)
    assert await store.hgetall_or_lease(b"person:a", b"person:not-found:a", b"lease:1") == (
        {b"name": b"A"},
        None,
    )
    assert view.get(b"person:not-found:a") is None  # a hit leaves the marker alone
    missing = (b"person:b", b"person:not-found:b")
    assert await store.hgetall_or_lease(*missing, b"lease:1") == ({}, None)
    assert view.get(b"person:not-found:b") == b"lease:1"
    assert await store.hgetall_or_lease(*missing, b"lease:2") == ({}, b"lease:1")
    await store.close()
