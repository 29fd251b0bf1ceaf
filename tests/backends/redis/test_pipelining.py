"""Auto-pipelining on a real redis-server: one round trip per loop iteration, callers apart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis
import redis.asyncio

from dbdaora import Session
from dbdaora.backends import DictFallback
from dbdaora.backends.redis.single import RedisStore
from dbdaora.backends.redis.wire.pipelining import AutoPipeline
from dbdaora.exceptions import BadDataError
from dbdaora.meta import key_prefixes
from tests.support.models import Person
from tests.support.servers import RedisServer


def _our_connections(client: redis.Redis) -> int:
    """Clients connected to the server, less the plain client asking."""
    return len(client.client_list()) - 1


@pytest.fixture
def seeded(raw_redis: redis.Redis) -> redis.Redis:
    """300 people written in Redis only, recorded as swept (no restart to sweep them for)."""
    run_id = raw_redis.info("server")["run_id"]
    raw_redis.hset(b"dbdaora:epoch", mapping=dict.fromkeys(key_prefixes(), run_id))
    for i in range(300):
        raw_redis.hset(f"person:p{i}", mapping={"id": f"p{i}", "name": f"name{i}", "age": i})
    return raw_redis


async def test_concurrent_gets_share_one_connection(
    redis_proc: RedisServer, seeded: redis.Redis
) -> None:
    """300 gets under gather each get their own entity, over a single connection."""
    async with Session(memory=redis_proc.url, fallback=DictFallback()) as session:
        people = Person.objects.using(session)
        found = await asyncio.gather(*(people.get(f"p{i}") for i in range(300)))
        assert [p.age for p in found] == list(range(300))
        assert [p.id for p in found] == [f"p{i}" for i in range(300)]
        assert _our_connections(seeded) == 1


async def test_without_autopipelining_each_call_takes_a_connection(
    redis_proc: RedisServer, seeded: redis.Redis
) -> None:
    """Turned off per session, concurrent gets spread over many connections."""
    async with Session(
        memory=redis_proc.url, fallback=DictFallback(), autopipeline=False, memory_timeout=10
    ) as s:
        people = Person.objects.using(s)
        found = await asyncio.gather(*(people.get(f"p{i}") for i in range(300)))
        assert [p.age for p in found] == list(range(300))
        assert _our_connections(seeded) > 1


async def test_an_error_reaches_only_its_caller(
    redis_proc: RedisServer, seeded: redis.Redis
) -> None:
    """A command that fails inside a batch fails its caller alone."""
    seeded.set("person:wrong", "a string, not a hash")
    store = RedisStore(redis_proc.url)
    outcomes: list[Any] = await asyncio.gather(
        store.hgetall(b"person:p1"),
        store.hgetall(b"person:wrong"),
        store.hgetall(b"person:p2"),
        return_exceptions=True,
    )
    assert outcomes[0][b"name"] == b"name1"
    assert isinstance(outcomes[1], BadDataError) and "WRONGTYPE" in str(outcomes[1])
    assert outcomes[2][b"name"] == b"name2"
    await store.close()


@pytest.mark.parametrize("victim", [0, 5, 9], ids=["leader", "middle", "last"])
async def test_cancelling_one_caller_leaves_the_others(
    redis_proc: RedisServer, seeded: redis.Redis, victim: int
) -> None:
    """A cancelled caller, the batch's leader included, does not disturb the rest."""
    store = RedisStore(redis_proc.url)
    tasks = [asyncio.ensure_future(store.hgetall(f"person:p{i}".encode())) for i in range(10)]
    await asyncio.sleep(0)
    tasks[victim].cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    for i, outcome in enumerate(outcomes):
        if i == victim:
            assert isinstance(outcome, asyncio.CancelledError)
        else:
            assert outcome[b"name"] == f"name{i}".encode()  # type: ignore[index]
    assert (await store.hgetall(b"person:p3"))[b"age"] == b"3"
    await store.close()


async def test_writes_and_reads_in_one_batch_keep_each_callers_order(
    redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """Adds and gets started together all land; each caller sees its own answer."""
    async with Session(memory=redis_proc.url, fallback=DictFallback()) as session:
        people = Person.objects.using(session)

        async def write_then_read(i: int) -> Person:
            await people.add(Person(id=f"w{i}", name=f"n{i}", age=i))
            got: Person = await people.get(f"w{i}")
            return got

        got = await asyncio.gather(*(write_then_read(i) for i in range(100)))
        assert [p.age for p in got] == list(range(100))
        assert raw_redis.hget("person:w42", "name") == b"n42"


async def test_an_operation_refused_while_queued_fails_only_its_caller(
    redis_proc: RedisServer,
) -> None:
    """An operation that raises as it joins a batch fails its caller; the others get answers."""
    client = redis.asyncio.Redis.from_url(redis_proc.url)
    pipeline = AutoPipeline(client)

    def refused(target: Any) -> Any:
        raise ValueError("refused while queuing")

    results = await asyncio.wait_for(
        asyncio.gather(
            pipeline.run(lambda target: target.ping()),
            pipeline.run(refused),
            pipeline.run(lambda target: target.echo(b"x")),
            return_exceptions=True,
        ),
        5,
    )
    assert results[0] is True and results[2] == b"x"
    assert isinstance(results[1], ValueError)
    await pipeline.close()
