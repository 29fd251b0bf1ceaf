"""Failover time on Redis Sentinel (issue 15): from kill -9 of the master to the first
read the promoted replica serves.

Run: .venv/bin/python -m benchmarks.sentinel_failover   [--runs 5]

A private deployment (``tests/support/sentinel_server.py``): a master, a replica
and three sentinels on loopback, ``down-after-milliseconds`` 1500, quorum 2. One
session with the default settings (``memory_timeout`` 1 s, breakers ``fail_max``
10 and ``probe_interval`` 0.5 s, no cache) over ``redis+sentinel://`` and the
``memory://`` fallback, 200 stored ``Person``s. Each run: 20 readers loop over
``get`` while the master is killed (SIGKILL); they open the Redis breaker and
read the fallback. Once every sentinel reports the new master the readers stop,
and one reader gets the same key again and again. Two figures per run: from the
kill to the sentinels reporting the promoted replica (Sentinel's own time: the
down-after delay, the vote, the promotion), and from then to the first ``get``
the session counts as a Redis hit (dbdaora's part: a breaker probe, the restart
sweep, a fill, a hit). The killed master then comes back as a replica before
the next run.

It prints each run's figures, their medians and maxima.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import statistics
import time

from dbdaora import Session
from tests.support.models import Person
from tests.support.sentinel_server import SentinelServer, redis_sentinel

STORED = 200
READERS = 20
GIVE_UP = 30.0
IDS = [f"r{i}" for i in range(STORED)]


def _hits(session: Session) -> int:
    return int(session.stats()["models"]["Person"]["redis_hits"])


async def one_failover(session: Session, deployment: SentinelServer) -> tuple[float, float]:
    """(kill to promotion reported, promotion reported to the first Redis hit), seconds."""
    people = Person.objects.using(session)
    stop = asyncio.Event()

    async def reader(i: int) -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await people.get(IDS[i])
            await asyncio.sleep(0.001)

    readers = [asyncio.create_task(reader(i)) for i in range(READERS)]
    old = deployment.master()
    old.kill()
    killed = time.monotonic()
    try:
        await asyncio.to_thread(deployment.wait_promoted, old.port, GIVE_UP)
    finally:
        stop.set()
        await asyncio.gather(*readers)
    promoted = time.monotonic()
    while time.monotonic() - promoted < GIVE_UP:
        before = _hits(session)
        await people.get("r0")
        if _hits(session) > before:
            return promoted - killed, time.monotonic() - promoted
        await asyncio.sleep(0.001)
    raise RuntimeError(f"no Redis hit within {GIVE_UP} s of the promotion")


async def run(deployment: SentinelServer, runs: int) -> list[tuple[float, float]]:
    figures = []
    async with Session(memory=deployment.url(), fallback="memory://") as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name=i) for i in IDS))
        await people.get_many(IDS)
        for _ in range(runs):
            figures.append(await one_failover(session, deployment))
            await asyncio.to_thread(deployment.restore)
    return figures


def report(figures: list[tuple[float, float]]) -> None:
    line = "{:<34}{:>10}{:>10}   {}"
    print(line.format("from -> to", "median", "max", "runs"))
    columns = {
        "kill -> sentinels report new": [promote for promote, _ in figures],
        "reported -> first Redis hit": [reach for _, reach in figures],
        "kill -> first Redis hit": [promote + reach for promote, reach in figures],
    }
    for name, times in columns.items():
        runs = ", ".join(f"{t * 1e3:.0f}" for t in times)
        median, most = statistics.median(times), max(times)
        print(line.format(name, f"{median * 1e3:.0f} ms", f"{most * 1e3:.0f} ms", f"[{runs}] ms"))


def main(runs: int = 5) -> list[tuple[float, float]]:
    with redis_sentinel() as deployment:
        figures = asyncio.run(run(deployment, runs))
    print(f"dbdaora on Redis Sentinel: {runs} failover(s) by kill -9 of the master")
    report(figures)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return figures


if __name__ == "__main__":
    logging.getLogger("dbdaora").setLevel(logging.CRITICAL)  # the outages log plenty
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
