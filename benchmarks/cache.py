"""A get answered from the session's in-process cache against one answered by Redis.

Run: .venv/bin/python -m benchmarks.cache   (starts its own private redis-server)

Both sessions read the same entity, interleaved round by round; the figures are
medians of per-get time over the rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import DictFallback
from tests.support.servers import redis_server

ROUNDS = 7
GETS = 2000


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)


async def per_get(session: Session) -> float:
    people = Person.objects.using(session)
    started = time.perf_counter()
    for _ in range(GETS):
        await people.get("john_doe")
    return (time.perf_counter() - started) / GETS


async def main(url: str) -> None:
    fallback = DictFallback()
    async with (
        Session(memory=url, fallback=fallback) as plain,
        Session(memory=url, fallback=fallback, cache={"ttl": 60, "max_size": 1000}) as cached,
    ):
        await Person.objects.using(plain).add(Person(id="john_doe", name="John Doe", age=33))
        await per_get(cached)
        redis_times, cache_times = [], []
        for _ in range(ROUNDS):
            redis_times.append(await per_get(plain))
            cache_times.append(await per_get(cached))
    from_redis, from_cache = statistics.median(redis_times), statistics.median(cache_times)
    print(f"get from Redis : {from_redis * 1e6:8.2f} us")
    print(f"get from cache : {from_cache * 1e6:8.2f} us")
    print(f"ratio Redis / cache: {from_redis / from_cache:.1f}x")


if __name__ == "__main__":
    with redis_server() as server:
        asyncio.run(main(server.url))
