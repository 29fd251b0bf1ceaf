"""Redis failing under load: killed, hung (SIGSTOP) and restarted, on a private server.

Workers each own a few ids, so the last value a worker acknowledged for an id is
the one every later read must return. Reads of the other ids (seeded in the
fallback) must never fail.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from dbdaora import Session
from dbdaora.backends import DictFallback
from tests.support.models import Person
from tests.support.servers import RedisServer, redis_server

TIMEOUT = 0.2
WORKERS = 8
IDS_PER_WORKER = 5
SEEDED = [f"seed{i}" for i in range(20)]


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone: it gets killed and paused."""
    with redis_server() as server:
        yield server


class Load:
    """Concurrent gets and adds, recording what was acknowledged and how long each took."""

    def __init__(self, session: Session) -> None:
        self.people = Person.objects.using(session)
        self.acknowledged: dict[str, str] = {}
        self.failures: list[BaseException] = []
        self.stale: list[tuple[str, str, str]] = []
        self.slowest = 0.0
        self.operations = 0
        self.running = True

    async def _timed(self, call: Awaitable[Any]) -> Any:
        started = time.monotonic()
        try:
            return await call
        finally:
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.operations += 1

    async def worker(self, number: int) -> None:
        owned = [f"w{number}-{i}" for i in range(IDS_PER_WORKER)]
        version = 0
        while self.running:
            version += 1
            id_ = owned[version % IDS_PER_WORKER]
            try:
                name = f"v{version}"
                await self._timed(self.people.add(Person(id=id_, name=name)))
                self.acknowledged[id_] = name
                check = owned[(version + 2) % IDS_PER_WORKER]
                if check in self.acknowledged:
                    got = await self._timed(self.people.get(check))
                    if got.name != self.acknowledged[check]:
                        self.stale.append((check, got.name, self.acknowledged[check]))
                seeded = SEEDED[version % len(SEEDED)]
                assert (await self._timed(self.people.get(seeded))).name == seeded
            except Exception as exc:
                self.failures.append(exc)
            await asyncio.sleep(0)

    async def run(self, fault: Callable[[], Awaitable[None]]) -> None:
        workers = [asyncio.ensure_future(self.worker(n)) for n in range(WORKERS)]
        await asyncio.sleep(0.3)
        await fault()
        await asyncio.sleep(0.5)
        self.running = False
        await asyncio.gather(*workers)


async def _session(server: RedisServer) -> tuple[Session, DictFallback]:
    fallback = DictFallback()
    await fallback.put_many(Person._meta, SEEDED, [Person(id=i, name=i) for i in SEEDED])
    session = Session(
        memory=server.url,
        fallback=fallback,
        breaker={"fail_max": 3, "reset_timeout": 0.3},
        memory_timeout=TIMEOUT,
    )
    return session, fallback


async def _check_recovered(load: Load, session: Session, server: RedisServer) -> None:
    """Every acknowledged write reads back, from the fallback and through Redis."""
    for id_, name in load.acknowledged.items():
        assert (await load.people.get(id_)).name == name
    fallback = session.fallback
    stored = await fallback.get_many(Person._meta, list(load.acknowledged))
    assert [p.name for p in stored] == list(load.acknowledged.values())
    client = server.client()
    for id_, name in load.acknowledged.items():
        raw = client.hget(f"person:{id_}".encode(), b"name")
        assert raw in (None, name.encode()), f"Redis holds {raw!r} for {id_}, acknowledged {name}"
    client.close()


async def test_redis_killed_and_restarted_under_load(private_redis: RedisServer) -> None:
    """A crash and restart of Redis loses no acknowledged write and fails no read."""
    session, _ = await _session(private_redis)
    load = Load(session)

    async def crash_and_restart() -> None:
        private_redis.kill()
        await asyncio.sleep(0.6)
        await asyncio.to_thread(private_redis.start)

    await load.run(crash_and_restart)
    assert load.failures == []
    assert load.stale == []
    assert load.operations > 100
    await _check_recovered(load, session, private_redis)
    assert session.stats()["models"]["Person"]["errors"] > 0
    await session.close()


async def test_hung_redis_is_bounded_and_leaves_nothing_stale(private_redis: RedisServer) -> None:
    """With Redis stopped, each call returns within memory_timeout plus the fallback's time."""
    session, _ = await _session(private_redis)
    load = Load(session)

    async def hang_then_continue() -> None:
        private_redis.pause()
        await asyncio.sleep(0.8)
        private_redis.resume()

    await load.run(hang_then_continue)
    assert load.failures == []
    assert load.stale == []
    assert load.slowest < TIMEOUT + 0.4, f"slowest call took {load.slowest:.3f}s"
    await _check_recovered(load, session, private_redis)
    await session.close()


async def test_stale_copy_left_by_an_outage_is_never_served(private_redis: RedisServer) -> None:
    """A value Redis kept through a hang is deleted before it can answer a read."""
    session, _ = await _session(private_redis)
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="before"))
    private_redis.pause()
    await people.add(Person(id="a", name="during"))
    private_redis.resume()
    client = private_redis.client()
    assert client.hget(b"person:a", b"name") in (b"before", b"during")
    assert (await people.get("a")).name == "during"
    assert client.hget(b"person:a", b"name") in (None, b"during")
    client.close()
    await session.close()
