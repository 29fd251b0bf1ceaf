"""The ORM against hand-written redis-py asyncio code doing the same commands (issue 6).

Run: .venv/bin/python -m benchmarks.speed   [--rounds 7] [--scale 1.0]

It starts two private redis-servers: one for the timings, and one for the memory
measurement alone, so that server's ``used_memory`` deltas hold nothing else.

Both sides reach the same server over the same protocol (RESP2, hiredis parser)
and work on the same keys and data. The ORM side is
``Person.objects.using(Session(memory=url, fallback=DictFallback(), cache=None))``:
no cache, the default circuit breakers and ``memory_timeout``. The hand-written
side is ``redis.asyncio.Redis.from_url(url)`` with slotted dataclasses standing in
for the models: what a careful engineer writes without a mapper. On both sides the
entities to write are built before the timer starts, and Redis keys are made from
the ids inside the timed region.

Each round runs one operation on the ORM and by hand, then the next operation.
Within a round the sides take turns over five slices of the batch (ORM, hand,
ORM, hand, ...), so a burst of load from elsewhere on the machine hits both;
``gc.collect()`` runs before each row's round. After an untimed warm-up pass
come ``--rounds`` rounds. A round's figure is the median of its operations'
times (of its gathers' rates for concurrent gets): a median keeps preemption by
other processes on a busy machine out of the figure, though it also hides rare
slow calls (a GC pause, say) on either side. The table shows the median over
the rounds, and ratio = ORM / hand; for throughput too, so higher is better
there and lower everywhere else. The data is stored beforehand by a session
without ``memory_timeout``, so a slow setup batch cannot lose keys.

What each row times (ORM | hand-written):

``get``
    ``get(id)`` | ``HGETALL person:<id>``, then a HandPerson built from the three
    decoded fields (raising KeyError on an empty answer). The ids cycle through
    1,000 stored entities.
``add``
    ``add(Person(...))``: the writer's claim (SET of the not-found marker), the
    fallback write, then one Lua script (GET of the marker, DEL, HSET, EXPIRE, DEL
    of the marker) | ``MULTI; HSET person:<id> id name age; EXPIRE 3600; EXEC`` in
    one transaction pipeline, which a racing writer can leave differing from the
    fallback. Same ids on both sides. The target is 1.35, not 1.15: the claim is a
    second round trip that the hand-written code, unsafe under racing writers,
    does not pay.
``get_many 100``
    ``get_many(100 ids)`` | one pipeline (transaction=False) of 100 HGETALL,
    then 100 HandPersons. The figure is per call of 100.
``concurrent gets``
    1,000 coroutines under one ``asyncio.gather``, each getting a distinct id:
    ``get(id)`` on the ORM session | one HGETALL each, decoded, on a client over
    a ``BlockingConnectionPool`` of 50 connections, no pipelining. The figure is
    gets per second over several gathers; the target is ORM / hand >= 4.
``read-through``
    A get of an id that only the fallback holds. Before each get, outside the
    timed region and on a third client, one ``DEL`` drops the entity's Redis key
    and its not-found marker (both sides get the same DEL). Then ``get(id)``
    (HGETALL miss, lease, fallback read, fill script) | ``HGETALL`` (empty), a
    read of a dict holding the same hash text as the ORM's DictFallback, the
    write-back ``DEL; HSET; EXPIRE`` in one transaction pipeline, and the
    HandPerson built.
``Redis memory``
    On the second server: ``FLUSHALL``, ``MEMORY PURGE``, ``used_memory``; then
    100,000 Persons written by ``add(*chunk)`` in chunks of 1,000, and
    ``used_memory`` again. The same for the hand side (pipelines of 1,000
    ``HSET`` + ``EXPIRE``, transaction=False). Each side first writes one
    unmeasured chunk, so connection buffers have grown before the baseline. The
    figure is bytes per entity, measured once (it does not vary). This session
    has no ``memory_timeout``: a batch outrunning it on a loaded machine would
    have its keys deleted by the session, spoiling the count.
``zadd``
    ``add(Ranking(...))`` to a set Redis and the fallback hold | ``MULTI; ZADD;
    EXPIRE 3600; EXEC``. Same members on both sides.
``range 10``
    ``range(board, 0, 9)`` | ``ZRANGE ranking:<board> 0 9 WITHSCORES`` and 10
    HandRankings, on a set of 1,000 members.
``range_by_score``
    ``range_by_score(board, min=250, max=750, count=10)`` | ``ZRANGE ... BYSCORE
    LIMIT 0 10 WITHSCORES`` and 10 HandRankings, on the same set.

Each row's ORM side has a session of its own, so Redis errors in one row (and the
breaker they open) cannot turn later rows into reads of the fallback. A round in
which the row's session counted a Redis error (failure, timeout, open breaker) is
left out of the ORM median, since some of its answers came from the fallback;
the row is marked ``ERR`` with a note under the table.

``--scale`` multiplies the operation counts, the number of gathers, the width
of a gather (at least 10) and the entities of the memory measurement (at least
1,000). The tests run it tiny; its figures mean little then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from dbdaora import Field, Key, Model, Score, Session, SortedMember
from dbdaora.backends import DictFallback
from tests.support.servers import redis_server

ROUNDS = 7
SLICES = 5
TTL = 3600
STORED = 1000
BATCH = 100
CONCURRENT = 1000
POOL = 50
MEMORY_ENTITIES = 100_000
CHUNK = 1000
LOW, HIGH = 250.0, 750.0

ROWS = (
    "get",
    "add",
    "get_many 100",
    "concurrent gets",
    "read-through",
    "Redis memory",
    "zadd",
    "range 10",
    "range_by_score",
)


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field()

    class Meta:
        expire_time = TTL


class Ranking(Model):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()

    class Meta:
        expire_time = TTL


@dataclass(slots=True)
class HandPerson:
    id: str
    name: str
    age: int


@dataclass(slots=True)
class HandRanking:
    board: str
    player: str
    points: float


def hand_person(raw: dict[bytes, bytes]) -> HandPerson:
    return HandPerson(raw[b"id"].decode(), raw[b"name"].decode(), int(raw[b"age"]))


def person_values(prefix: str, count: int) -> list[tuple[str, str, int]]:
    """(id, name, age) of ``count`` entities whose ids start with ``prefix``."""
    return [(f"{prefix}{i}", f"Person {i}", 20 + i % 60) for i in range(count)]


def orm_people(prefix: str, count: int) -> list[Person]:
    return [Person(id=i, name=n, age=a) for i, n, a in person_values(prefix, count)]


Op = Callable[[int], Awaitable[object]]


async def timings(count: int, op: Op) -> list[float]:
    """Seconds each call of ``op(i)`` took, for i in ``range(count)``, one after another."""
    clock, times = time.perf_counter, []
    for i in range(count):
        start = clock()
        await op(i)
        times.append(clock() - start)
    return times


@dataclass(frozen=True)
class Case:
    """One timed row: the two sides, operations per round, and the target ratio."""

    name: str
    orm: Callable[[Session, int], Awaitable[list[float]]]
    hand: Callable[[int], Awaitable[list[float]]]
    count: int
    throughput: bool = False
    target: float | None = None


@dataclass
class Row:
    """A row's figures: ORM rounds answered by Redis alone, hand rounds, ORM errors."""

    name: str
    kind: str
    target: float | None
    orm: list[float] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    tainted: int = 0
    errors: int = 0
    breaker: str = "closed"


def orm_errors(session: Session) -> int:
    """Redis calls the session saw fail or time out, or its breaker refused."""
    return sum(counters["errors"] for counters in session.stats()["models"].values())


class Bench:
    """The hand-written clients and the data of the timed rows, on one server."""

    def __init__(self, url: str, fallback: DictFallback, scale: float) -> None:
        self.url = url
        self.fallback = fallback
        self.client = Redis.from_url(url)
        self.pooled = Redis.from_pool(BlockingConnectionPool.from_url(url, max_connections=POOL))
        self.admin = Redis.from_url(url)
        self.ids = [f"p{i}" for i in range(STORED)]
        self.unfilled = [f"r{i}" for i in range(STORED)]
        self.durable: dict[str, dict[bytes, bytes]] = {}
        self.concurrent = self.ids[: max(10, min(CONCURRENT, round(CONCURRENT * scale)))]

    async def close(self) -> None:
        for client in (self.client, self.pooled, self.admin):
            await client.aclose()

    async def fill(self) -> None:
        """Store what the reads need, and check that both sides read it alike."""
        setup = Session(memory=self.url, fallback=self.fallback, cache=None, memory_timeout=None)
        async with setup as session:
            people: Any = Person.objects.using(session)
            await people.add(*orm_people("p", STORED))
            unfilled = orm_people("r", STORED)
            await people.add(*unfilled)
            board = [Ranking(board="top", player=f"m{i}", points=float(i)) for i in range(STORED)]
            first = Ranking(board="adds", player="first", points=0.0)
            await Ranking.objects.using(session).add(*board, first)
            orm = await people.get("p7")
            assert orm_errors(session) == 0, session.stats()
        for entity in unfilled:
            self.durable[entity.id] = {
                b"id": entity.id.encode(),
                b"name": entity.name.encode(),
                b"age": str(entity.age).encode(),
            }
        hand = hand_person(await self.client.hgetall("person:p7"))
        assert (orm.id, orm.name, orm.age) == (hand.id, hand.name, hand.age), (orm, hand)

    def cases(self, scale: float) -> list[Case]:
        def n(count: int) -> int:
            return max(1, round(count * scale))

        return [
            Case("get", self.orm_get, self.hand_get, n(1000), target=1.15),
            Case("add", self.orm_add, self.hand_add, n(500), target=1.35),
            Case("get_many 100", self.orm_get_many, self.hand_get_many, n(30), target=1.3),
            Case(
                "concurrent gets",
                self.orm_concurrent,
                self.hand_concurrent,
                n(3),
                throughput=True,
                target=4.0,
            ),
            Case("read-through", self.orm_read_through, self.hand_read_through, n(300), target=1.3),
            Case("zadd", self.orm_zadd, self.hand_zadd, n(300)),
            Case("range 10", self.orm_range, self.hand_range, n(800)),
            Case("range_by_score", self.orm_by_score, self.hand_by_score, n(800)),
        ]

    # -- hashes -------------------------------------------------------------------------

    async def orm_get(self, session: Session, count: int) -> list[float]:
        get, ids = Person.objects.using(session).get, self.ids
        return await timings(count, lambda i: get(ids[i % STORED]))

    async def hand_get(self, count: int) -> list[float]:
        hgetall, ids = self.client.hgetall, self.ids

        async def get(i: int) -> HandPerson:
            raw = await hgetall(f"person:{ids[i % STORED]}")
            if not raw:
                raise KeyError(ids[i % STORED])
            return hand_person(raw)

        return await timings(count, get)

    async def orm_add(self, session: Session, count: int) -> list[float]:
        add, entities = Person.objects.using(session).add, orm_people("a", count)
        return await timings(count, lambda i: add(entities[i]))

    async def hand_add(self, count: int) -> list[float]:
        client = self.client
        entities = [HandPerson(*values) for values in person_values("a", count)]

        async def add(i: int) -> None:
            entity = entities[i]
            key = f"person:{entity.id}"
            mapping = {"id": entity.id, "name": entity.name, "age": entity.age}
            async with client.pipeline(transaction=True) as pipe:
                await pipe.hset(key, mapping=mapping).expire(key, TTL).execute()

        return await timings(count, add)

    def _batch(self, i: int) -> list[str]:
        start = i % (STORED // BATCH) * BATCH
        return self.ids[start : start + BATCH]

    async def orm_get_many(self, session: Session, count: int) -> list[float]:
        get_many, batch = Person.objects.using(session).get_many, self._batch
        return await timings(count, lambda i: get_many(batch(i)))

    async def hand_get_many(self, count: int) -> list[float]:
        client, batch = self.client, self._batch

        async def get_many(i: int) -> list[HandPerson]:
            pipe = client.pipeline(transaction=False)
            for entity_id in batch(i):
                pipe.hgetall(f"person:{entity_id}")
            return [hand_person(raw) for raw in await pipe.execute() if raw]

        return await timings(count, get_many)

    async def _throughput(self, count: int, get: Callable[[str], Awaitable[object]]) -> list[float]:
        """Gets per second of each of ``count`` gathers of one get per id."""
        ids, rates = self.concurrent, []
        for _ in range(count):
            start = time.perf_counter()
            await asyncio.gather(*(get(entity_id) for entity_id in ids))
            rates.append(len(ids) / (time.perf_counter() - start))
        return rates

    async def orm_concurrent(self, session: Session, count: int) -> list[float]:
        return await self._throughput(count, Person.objects.using(session).get)

    async def hand_concurrent(self, count: int) -> list[float]:
        pooled = self.pooled

        async def get(entity_id: str) -> HandPerson:
            raw = await pooled.hgetall(f"person:{entity_id}")
            if not raw:
                raise KeyError(entity_id)
            return hand_person(raw)

        return await self._throughput(count, get)

    async def _evicting(self, count: int, get: Callable[[str], Awaitable[object]]) -> list[float]:
        """Seconds each ``get(id)`` took, each after an untimed DEL of the id's Redis keys."""
        delete, ids, times = self.admin.delete, self.unfilled, []
        for i in range(count):
            entity_id = ids[i % STORED]
            await delete(f"person:{entity_id}", f"person:not-found:{entity_id}")
            start = time.perf_counter()
            await get(entity_id)
            times.append(time.perf_counter() - start)
        return times

    async def orm_read_through(self, session: Session, count: int) -> list[float]:
        return await self._evicting(count, Person.objects.using(session).get)

    async def hand_read_through(self, count: int) -> list[float]:
        client, durable = self.client, self.durable

        async def get(entity_id: str) -> HandPerson:
            key = f"person:{entity_id}"
            raw = await client.hgetall(key)
            if not raw:
                raw = durable[entity_id]
                async with client.pipeline(transaction=True) as pipe:
                    await pipe.delete(key).hset(key, mapping=raw).expire(key, TTL).execute()
            return hand_person(raw)

        return await self._evicting(count, get)

    # -- sorted sets ----------------------------------------------------------------------

    async def orm_zadd(self, session: Session, count: int) -> list[float]:
        add = Ranking.objects.using(session).add
        members = [Ranking(board="adds", player=f"z{i}", points=float(i)) for i in range(count)]
        return await timings(count, lambda i: add(members[i]))

    async def hand_zadd(self, count: int) -> list[float]:
        client = self.client
        members = [HandRanking("adds", f"z{i}", float(i)) for i in range(count)]

        async def add(i: int) -> None:
            member = members[i]
            key = f"ranking:{member.board}"
            async with client.pipeline(transaction=True) as pipe:
                await pipe.zadd(key, {member.player: member.points}).expire(key, TTL).execute()

        return await timings(count, add)

    async def orm_range(self, session: Session, count: int) -> list[float]:
        ranks = Ranking.objects.using(session).range
        return await timings(count, lambda i: ranks("top", 0, 9))

    async def hand_range(self, count: int) -> list[float]:
        zrange = self.client.zrange

        async def ranks(i: int) -> list[HandRanking]:
            pairs = await zrange("ranking:top", 0, 9, withscores=True)
            return [HandRanking("top", member.decode(), score) for member, score in pairs]

        return await timings(count, ranks)

    async def orm_by_score(self, session: Session, count: int) -> list[float]:
        by_score = Ranking.objects.using(session).range_by_score
        return await timings(count, lambda i: by_score("top", min=LOW, max=HIGH, count=10))

    async def hand_by_score(self, count: int) -> list[float]:
        zrange = self.client.zrange

        async def by_score(i: int) -> list[HandRanking]:
            pairs = await zrange(
                "ranking:top", LOW, HIGH, byscore=True, offset=0, num=10, withscores=True
            )
            return [HandRanking("top", member.decode(), score) for member, score in pairs]

        return await timings(count, by_score)


async def run_round(case: Case, session: Session, row: Row) -> None:
    """One round of a row: its batch in ``SLICES`` slices, the two sides taking turns."""
    part = max(1, case.count // SLICES)
    orm: list[float] = []
    hand: list[float] = []
    errors = orm_errors(session)
    gc.collect()
    for _ in range(min(SLICES, case.count)):
        orm += await case.orm(session, part)
        hand += await case.hand(part)
    if orm_errors(session) == errors:
        row.orm.append(statistics.median(orm))
    else:
        row.tainted += 1
    row.hand.append(statistics.median(hand))


async def run_timed(url: str, rounds: int, scale: float) -> list[Row]:
    """The timed rows, each ORM side on a session of its own (see the module doc)."""
    fallback = DictFallback()
    bench = Bench(url, fallback, scale)
    rows: list[Row] = []
    try:
        await bench.fill()
        cases = bench.cases(scale)
        async with contextlib.AsyncExitStack() as stack:
            sessions = [
                await stack.enter_async_context(Session(memory=url, fallback=fallback, cache=None))
                for _ in cases
            ]
            for case, session in zip(cases, sessions, strict=True):
                await case.orm(session, max(1, case.count // 5))
                await case.hand(max(1, case.count // 5))
                kind = "throughput" if case.throughput else "time"
                rows.append(Row(case.name, kind, case.target))
            for _ in range(rounds):
                for case, session, row in zip(cases, sessions, rows, strict=True):
                    await run_round(case, session, row)
            for session, row in zip(sessions, rows, strict=True):
                row.errors = orm_errors(session)
                row.breaker = session.stats()["breakers"]["memory"]
    finally:
        await bench.close()
    return rows


async def used_memory(url: str, count: int) -> tuple[float, float]:
    """Bytes of ``used_memory`` per entity: written by the ORM, and by hand."""
    admin, client = Redis.from_url(url), Redis.from_url(url)
    try:
        # No time bound here: a batch that outran memory_timeout on a loaded machine
        # would have its keys deleted from Redis by the session, spoiling the count.
        session = Session(memory=url, fallback=DictFallback(), cache=None, memory_timeout=None)
        async with session:
            people: Any = Person.objects.using(session)
            values = person_values("m", count)
            entities = orm_people("m", count)

            async def by_orm(count: int) -> None:
                for start in range(0, count, CHUNK):
                    await people.add(*entities[start : start + CHUNK])

            async def by_hand(count: int) -> None:
                for start in range(0, count, CHUNK):
                    pipe = client.pipeline(transaction=False)
                    for entity_id, name, age in values[start : start + CHUNK]:
                        key = f"person:{entity_id}"
                        pipe.hset(key, mapping={"id": entity_id, "name": name, "age": age})
                        pipe.expire(key, TTL)
                    await pipe.execute()

            # A first, unmeasured chunk grows the connections' buffers on both sides.
            await _delta(admin, by_orm, CHUNK)
            await _delta(admin, by_hand, CHUNK)
            orm = await _delta(admin, by_orm, count)
            hand = await _delta(admin, by_hand, count)
    finally:
        await admin.aclose()
        await client.aclose()
    return orm, hand


async def _delta(admin: Redis, write: Callable[[int], Awaitable[None]], count: int) -> float:
    """``used_memory`` grown per entity by ``write(count)``, from an empty, purged server."""
    await admin.flushall()
    await admin.execute_command("MEMORY PURGE")
    before = (await admin.info("memory"))["used_memory"]
    await write(count)
    after = (await admin.info("memory"))["used_memory"]
    keys = await admin.dbsize() - len(await admin.keys("dbdaora:*"))  # but its bookkeeping
    assert keys == count, f"{keys} keys for {count} entities"
    return float(after - before) / count


def _cell(values: list[float], kind: str) -> str:
    if not values:
        return "n/a"
    value = statistics.median(values)
    if kind == "throughput":
        return f"{value / 1000:.1f} k/s"
    if kind == "memory":
        return f"{value:.1f} B/ent"
    return f"{value * 1e6:.1f} us"


def report(rows: list[Row]) -> None:
    """Print the table, then what went wrong on the ORM side, if anything."""
    line = "{:<18}{:>14}{:>14}{:>8}{:>9}{:>5}"
    print(line.format("operation", "ORM median", "hand median", "ratio", "target", "met"))
    for row in rows:
        ratio = statistics.median(row.orm) / statistics.median(row.hand) if row.orm else None
        if row.target is None:
            goal, met = "-", "-"
        else:
            at_least = row.kind == "throughput"
            goal = f"{'>=' if at_least else '<='} {row.target:g}"
            good = ratio is not None and (ratio >= row.target if at_least else ratio <= row.target)
            met = "yes" if good else "NO"
        if row.errors:
            met = "ERR"
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        print(
            line.format(
                row.name, _cell(row.orm, row.kind), _cell(row.hand, row.kind), shown, goal, met
            )
        )
    for row in rows:
        if row.errors:
            print(
                f"ERR {row.name}: the ORM session counted {row.errors} Redis errors (breaker "
                f"{row.breaker}); {row.tainted} of {row.tainted + len(row.orm)} rounds had some "
                "and are left out, their answers came from the fallback"
            )


def main(rounds: int = ROUNDS, scale: float = 1.0) -> None:
    """Run every row on two private redis-servers and print the table."""
    started = time.perf_counter()
    entities = max(CHUNK, round(MEMORY_ENTITIES * scale))
    with redis_server() as timed_server, redis_server() as memory_server:
        timed = asyncio.run(run_timed(timed_server.url, rounds, scale))
        halfway = time.perf_counter()
        orm_bytes, hand_bytes = asyncio.run(used_memory(memory_server.url, entities))
    ended = time.perf_counter()
    memory = Row("Redis memory", "memory", 1.05, [orm_bytes], [hand_bytes])
    by_name = {row.name: row for row in [*timed, memory]}
    print(f"dbdaora speed: {rounds} round(s), scale {scale:g}, {entities} entities in Redis memory")
    report([by_name[name] for name in ROWS])
    print(
        f"took {ended - started:.0f} s (timed rows {halfway - started:.0f} s, memory "
        f"{ended - halfway:.0f} s); load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    logging.getLogger("dbdaora").setLevel(logging.ERROR)  # errors are counted in the table
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--scale", type=float, default=1.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.scale)
