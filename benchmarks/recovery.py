"""Recovery times after an outage (issue 14), on a private redis-server and PostgreSQL.

Run: .venv/bin/python -m benchmarks.recovery   [--runs 5] [--outage 2.0]

One session with the default settings (``memory_timeout`` 1 s, breakers
``fail_max`` 10 and ``probe_interval`` 0.5 s, ``repair_interval`` 2 s, no cache)
over ``redis://`` and ``postgresql+asyncpg://``, 200 stored ``Person``s. Each run
of each fault:

``Redis SIGSTOP``
    20 readers loop over ``get`` while Redis is frozen for ``--outage`` seconds
    (they open the Redis breaker and read PostgreSQL); at SIGCONT they stop, and
    one reader gets the same key again and again: the figure is the time from
    SIGCONT to the first ``get`` the session counts as a Redis hit.
``Redis kill -9``
    The same readers while Redis is dead (SIGKILL) for ``--outage`` seconds, then
    a restart, empty, on the same port; the figure runs from the server answering
    PING (the harness polls every 20 ms) to the first Redis hit (the first get
    after the restart fills the key, a later one hits it).
``PostgreSQL stop``
    A writer loops over ``add`` while PostgreSQL is stopped (``pg_ctl stop -m
    fast``) for ``--outage`` seconds (it opens the fallback breaker); the figure
    runs from ``pg_ctl start`` returning (the server accepts connections) to the
    first ``add`` acknowledged.

It prints each run's figure, the median and the max. The tests run it tiny.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable

from dbdaora import Session
from tests.support.models import Person
from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server

STORED = 200
READERS = 20
GIVE_UP = 30.0
IDS = [f"r{i}" for i in range(STORED)]


def _hits(session: Session) -> int:
    return int(session.stats()["models"]["Person"]["redis_hits"])


async def _load(
    during: Callable[[], Awaitable[None]], loop: Callable[[int], Awaitable[None]]
) -> None:
    """Run ``loop(i)`` in ``READERS`` tasks while ``during()`` runs, then stop them."""
    stop = asyncio.Event()

    async def worker(i: int) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await loop(i)
            await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(worker(i)) for i in range(READERS)]
    try:
        await during()
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _first_redis_hit(session: Session, since: float) -> float:
    people = Person.objects.using(session)
    while time.monotonic() - since < GIVE_UP:
        before = _hits(session)
        await people.get("r0")
        if _hits(session) > before:
            return time.monotonic() - since
        await asyncio.sleep(0.001)
    raise RuntimeError(f"no Redis hit within {GIVE_UP} s of Redis answering")


async def redis_pause(session: Session, server: RedisServer, outage: float) -> float:
    people = Person.objects.using(session)

    async def frozen() -> None:
        server.pause()
        await asyncio.sleep(outage)

    try:
        await _load(frozen, lambda i: people.get(IDS[i]))
    finally:
        server.resume()
    return await _first_redis_hit(session, time.monotonic())


async def redis_kill(session: Session, server: RedisServer, outage: float) -> float:
    people = Person.objects.using(session)

    async def dead() -> None:
        server.kill()
        await asyncio.sleep(outage)

    await _load(dead, lambda i: people.get(IDS[i]))
    await asyncio.to_thread(server.start)
    return await _first_redis_hit(session, time.monotonic())


async def postgres_stop(session: Session, server: PostgresServer, outage: float) -> float:
    people = Person.objects.using(session)
    seq = 0

    async def write(i: int) -> None:
        await people.add(Person(id=IDS[i], name=f"w{i}"))

    async def stopped() -> None:
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(outage)

    await _load(stopped, write)
    await asyncio.to_thread(server.start)
    back = time.monotonic()
    while time.monotonic() - back < GIVE_UP:
        seq += 1
        try:
            await people.add(Person(id="r0", name=f"after {seq}"))
            return time.monotonic() - back
        except Exception:
            await asyncio.sleep(0.001)
    raise RuntimeError(f"no write acknowledged within {GIVE_UP} s of PostgreSQL answering")


FAULTS = {
    "Redis SIGSTOP": redis_pause,
    "Redis kill -9": redis_kill,
    "PostgreSQL stop": postgres_stop,
}


async def run(
    redis: RedisServer, postgres: PostgresServer, runs: int, outage: float
) -> dict[str, list[float]]:
    url = postgres.url_of("recovery")
    figures: dict[str, list[float]] = {name: [] for name in FAULTS}
    async with Session(memory=redis.url, fallback=url) as session:
        # Only this model's table: other modules of a test run declare other Persons.
        await session.fallback.create_all([Person._meta])
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name=i) for i in IDS))
        await people.get_many(IDS)
        for _ in range(runs):
            for name, fault in FAULTS.items():
                server = postgres if name.startswith("PostgreSQL") else redis
                figures[name].append(await fault(session, server, outage))  # type: ignore[operator]
                await asyncio.sleep(0.5)
    return figures


def report(figures: dict[str, list[float]]) -> None:
    line = "{:<18}{:>12}{:>12}   {}"
    print(line.format("fault", "median", "max", "runs"))
    for name, times in figures.items():
        runs = ", ".join(f"{t * 1e3:.0f}" for t in times)
        print(
            line.format(
                name,
                f"{statistics.median(times) * 1e3:.0f} ms",
                f"{max(times) * 1e3:.0f} ms",
                f"[{runs}] ms",
            )
        )


def main(runs: int = 5, outage: float = 2.0) -> dict[str, list[float]]:
    with redis_server() as redis, postgres_server() as postgres:
        postgres.admin("CREATE DATABASE recovery")
        figures = asyncio.run(run(redis, postgres, runs, outage))
    print(f"dbdaora recovery: {runs} run(s) of each fault, {outage:g} s outages")
    report(figures)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return figures


if __name__ == "__main__":
    logging.getLogger("dbdaora").setLevel(logging.CRITICAL)  # the outages log plenty
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--outage", type=float, default=2.0)
    arguments = parser.parse_args()
    main(arguments.runs, arguments.outage)
