"""The cost of the 0.27 adapter: ``repository.query(id).entity`` against
``Person.objects.get(id)`` on the same stores, from a private redis-server and
from the session cache.

Run: .venv/bin/python -m benchmarks.legacy   (starts its own private redis-server)

Both read the same Redis hash through sessions configured alike, interleaved
round by round; the figures are
medians of per-get time over the rounds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from dbdaora import (
    DictFallbackDataSource,
    Field,
    HashRepository,
    Key,
    Model,
    Session,
    make_redis_data_source,
)
from tests.support.servers import redis_server

ROUNDS = 7
GETS = 2000


@dataclass
class Person:
    id: str
    name: str
    age: int


class PersonRepository(HashRepository[Person, str]): ...


class DeclaredPerson(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field()

    class Meta:
        key_name = "person"


async def per_get(get: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    for _ in range(GETS):
        await get()
    return (time.perf_counter() - started) / GETS


async def compare(label: str, url: str, cache: dict[str, Any] | None) -> None:
    repository = PersonRepository(
        memory_data_source=await make_redis_data_source(url),
        fallback_data_source=DictFallbackDataSource(),
        expire_time=3600,
        cache=cache,
    )
    await repository.add(Person("john_doe", "John Doe", 33))
    # A session of its own, configured alike: sessions cache per stored key, and
    # the two would otherwise answer each other's cached copies.
    session = Session(
        memory=repository.memory_data_source,
        fallback=repository.fallback_data_source,
        cache=cache,
        breaker=None,
        memory_timeout=1.0,
    )
    declared = DeclaredPerson.objects.using(session)

    def legacy_get() -> Awaitable[Any]:
        return repository.query("john_doe").entity

    def declared_get() -> Awaitable[Any]:
        return declared.get("john_doe")

    await per_get(legacy_get)
    await per_get(declared_get)
    legacy_times, declared_times = [], []
    for _ in range(ROUNDS):
        legacy_times.append(await per_get(legacy_get))
        declared_times.append(await per_get(declared_get))
    await repository.close()
    legacy, plain = statistics.median(legacy_times), statistics.median(declared_times)
    print(
        f"{label:<11} 0.27 query().entity {legacy * 1e6:8.2f} us | "
        f"Model.objects.get {plain * 1e6:8.2f} us | ratio {legacy / plain:.2f}x"
    )


async def main(url: str) -> None:
    await compare("from Redis", url, None)
    await compare("from cache", url, {"ttl": 60, "max_size": 1000})


if __name__ == "__main__":
    with redis_server() as server:
        asyncio.run(main(server.url))
