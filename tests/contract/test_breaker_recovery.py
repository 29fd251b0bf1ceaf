"""Breakers with default settings against real servers: they open on an outage, name it,
and close within about two seconds of the store answering again; a busy host opens none.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator

import pytest

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.exceptions import BackendError, RedisUnavailableError
from tests.support.models import Person
from tests.support.servers import PostgresServer, RedisServer, redis_server

IDS = [f"p{i}" for i in range(20)]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone: it gets paused."""
    with redis_server() as server:
        yield server


async def _until(condition: object, within: float, what: str) -> float:
    """Seconds until ``condition()`` holds, polling; fails after ``within``."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < within, f"{what} not within {within} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_hung_redis_opens_the_breaker_and_sigcont_closes_it_within_2s(
    private_redis: RedisServer,
) -> None:
    """SIGSTOP opens the Redis breaker; after SIGCONT reads come from Redis within ~2 s."""
    fallback = DictFallback()
    await fallback.put_many(Person._meta, IDS, [Person(id=i, name=i) for i in IDS])
    async with Session(memory=private_redis.url, fallback=fallback) as session:
        people = Person.objects.using(session)
        await people.get_many(IDS)
        private_redis.pause()
        try:
            reads = [asyncio.ensure_future(people.get(i)) for i in IDS]
            assert [p.name for p in await asyncio.gather(*reads)] == IDS  # from the fallback
            assert session.stats()["breakers"]["memory"] == "open"
            with pytest.raises(RedisUnavailableError) as refused:
                await session.redis(session.memory.hgetall, b"person:p0")
            message = str(refused.value)
            assert f"127.0.0.1:{private_redis.port}" in message, message
            assert re.search(r"circuit breaker open until \d\d:\d\d:\d\d", message), message
            await asyncio.sleep(1.5)  # probes go unanswered meanwhile
            assert session.stats()["breakers"]["memory"] == "open"
        finally:
            private_redis.resume()
        resumed = time.monotonic()
        await _until(
            lambda: session.stats()["breakers"]["memory"] == "closed", 2.5, "breaker closed"
        )
        hits = session.stats()["models"]["Person"]["redis_hits"]
        await people.get("p1")
        assert session.stats()["models"]["Person"]["redis_hits"] == hits + 1
        assert time.monotonic() - resumed < 2.5


async def test_postgres_restarted_takes_writes_again_within_3s(
    postgres_proc: PostgresServer, postgres_url: str
) -> None:
    """PostgreSQL stopped opens the fallback breaker; writes succeed ~2 s after it is back."""
    from dbdaora.backends.fallback.sql.store import SQLFallback

    async with Session(memory=InProcessRedis(), fallback=SQLFallback(postgres_url)) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="before"))
        await asyncio.to_thread(postgres_proc.stop)
        try:
            for attempt in range(30):
                with pytest.raises(BackendError):
                    await people.add(Person(id="a", name=f"down{attempt}"))
                if session.stats()["breakers"]["fallback"] == "open":
                    break
            assert session.stats()["breakers"]["fallback"] == "open"
            with pytest.raises(BackendError) as refused:
                await people.add(Person(id="a", name="refused"))
            message = str(refused.value)
            assert f"127.0.0.1:{postgres_proc.port}" in message, message
            assert "circuit breaker open until" in message, message
        finally:
            await asyncio.to_thread(postgres_proc.start)  # returns once it accepts connections
        back = time.monotonic()
        while True:
            try:
                await people.add(Person(id="a", name="after"))
                break
            except BackendError:
                assert time.monotonic() - back < 3.0, "writes still refused 3 s after restart"
                await asyncio.sleep(0.05)
        assert time.monotonic() - back < 3.0
        assert (await people.get("a")).name == "after"


async def test_a_cpu_saturated_host_opens_no_breaker(
    redis_proc: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Three busy-loop OS processes and 500 concurrent readers open no breaker (defaults)."""
    from benchmarks.breaker_load import cpu_hogs, run

    caplog.set_level(logging.WARNING, logger="dbdaora")
    with cpu_hogs(3):
        found = await run(redis_proc.url, {}, seconds=4.0, workers=500)
    assert found["openings"] == 0, found
    assert found["from_redis"] > 0.99, found
