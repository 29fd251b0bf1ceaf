"""Sharded Redis (``redis+shards://``, 0.27's hash ring) against hand-written redis-py
doing the same routing, in one run (issue 19).

Run: .venv/bin/python -m benchmarks.shards   [--rounds 7] [--scale 1.0]  (starts three
private redis-servers)

1,000 Persons written once through the ORM, spread over three servers by 0.27's
ring (the MD5 of the key, modulo 3). Sessions have no cache and no breaker
deadline, so each call goes to Redis.

``get``
    ``Person.objects.get(id)`` | the key's server found by MD5, ``HGETALL`` on a
    ``redis.asyncio`` client of that server, a slotted HandPerson built.
``get_many``
    ``Person.objects.get_many(100 ids)`` | the ids grouped by server, one
    ``HGETALL`` pipeline per server sent at once, the answers put back in order.

Both sides take turns call by call; a round's figure is the median time per call,
the table shows the median over the rounds and ratio = ORM / hand.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import DictFallback
from tests.support.shards import sharded_servers

PEOPLE = 1_000
CALLS = 2_000
BATCH = 100


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)


@dataclasses.dataclass(slots=True)
class HandPerson:
    id: str
    name: str
    age: int


class HandShards:
    """What a careful user writes by hand: a client per server, 0.27's ring."""

    def __init__(self, urls: list[str]) -> None:
        self.clients = [redis.asyncio.Redis.from_url(url) for url in urls]

    def index(self, key: str) -> int:
        digest = hashlib.md5(key.encode(), usedforsecurity=False).digest()
        return int.from_bytes(digest, "big") % len(self.clients)

    async def get(self, id_: str) -> HandPerson:
        key = f"person:{id_}"
        raw = await self.clients[self.index(key)].hgetall(key)
        return HandPerson(id_, raw[b"name"].decode(), int(raw[b"age"]))

    async def get_many(self, ids: list[str]) -> list[HandPerson]:
        groups: dict[int, list[int]] = {}
        for position, id_ in enumerate(ids):
            groups.setdefault(self.index(f"person:{id_}"), []).append(position)

        async def on(index: int, positions: list[int]) -> list[Any]:
            pipe = self.clients[index].pipeline(transaction=False)
            for position in positions:
                pipe.hgetall(f"person:{ids[position]}")
            replies: list[Any] = await pipe.execute()
            return replies

        answers = await asyncio.gather(*(on(i, p) for i, p in groups.items()))
        found: list[Any] = [None] * len(ids)
        for positions, replies in zip(groups.values(), answers, strict=True):
            for position, raw in zip(positions, replies, strict=True):
                found[position] = HandPerson(ids[position], raw[b"name"].decode(), int(raw[b"age"]))
        return found

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return time.perf_counter() - started, result


async def run(url: str, urls: list[str], rounds: int, scale: float) -> dict[str, float]:
    calls = max(int(CALLS * scale), 20)
    ids = [f"user{i}" for i in range(PEOPLE)]
    hand = HandShards(urls)
    figures: dict[str, float] = {}
    async with Session(
        memory=url, fallback=DictFallback(), memory_timeout=None, cache=None
    ) as session:
        people = Person.objects.using(session)
        for i in range(0, PEOPLE, 200):
            await people.add(*(Person(id=id_, name=id_.upper(), age=1) for id_ in ids[i : i + 200]))
        print(f"{PEOPLE:,} Persons on {len(urls)} shards, {rounds} rounds of {calls:,} calls")
        print(f"{'operation':<10} {'ORM median':>12} {'hand median':>12} {'ratio':>7}")
        for name in ("get", "get_many"):
            orm_rounds, hand_rounds = [], []
            for round_ in range(rounds + 1):
                gc.collect()
                orm_times, hand_times = [], []
                for i in range(calls):
                    if name == "get":
                        id_ = ids[i % PEOPLE]
                        orm_time, orm = await _timed(lambda id_=id_: people.get(id_))
                        hand_time, by_hand = await _timed(lambda id_=id_: hand.get(id_))
                        assert orm.name == by_hand.name
                    else:
                        batch = [ids[(i * BATCH + j) % PEOPLE] for j in range(BATCH)]
                        orm_time, orm = await _timed(lambda b=batch: people.get_many(b))
                        hand_time, by_hand = await _timed(lambda b=batch: hand.get_many(b))
                        assert [p.name for p in orm] == [p.name for p in by_hand]
                    orm_times.append(orm_time)
                    hand_times.append(hand_time)
                if round_:  # the first round warms up
                    orm_rounds.append(statistics.median(orm_times))
                    hand_rounds.append(statistics.median(hand_times))
            orm_median, hand_median = statistics.median(orm_rounds), statistics.median(hand_rounds)
            figures[name] = orm_median / hand_median
            print(
                f"{name:<10} {orm_median * 1e6:>9.1f} us {hand_median * 1e6:>9.1f} us "
                f"{orm_median / hand_median:>7.2f}"
            )
        assert session.stats()["models"]["Person"]["errors"] == 0
    await hand.close()
    return figures


def main(rounds: int = 7, scale: float = 1.0) -> dict[str, float]:
    with sharded_servers() as servers:
        return asyncio.run(run(servers.url, servers.urls, rounds, scale))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.scale)
