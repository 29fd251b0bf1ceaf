"""The redis:// backend against a real server: failures, URLs, event loops."""

from __future__ import annotations

import asyncio

import pytest
import redis

from dbdaora import BackendError, Session
from dbdaora.backends.memory import DictFallback, MemoryStore
from dbdaora.backends.redis import RedisStore
from tests.models import Person, Ranking
from tests.servers import RedisServer, free_port


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
    store = MemoryStore()
    store.down = True
    with pytest.raises(BackendError, match=r"connection lost \(memory://\)") as error:
        await store.hgetall(b"person:a")
    assert isinstance(error.value.__cause__, ConnectionError)
