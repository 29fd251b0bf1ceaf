"""False opens of the Redis breaker on a CPU-saturated host, with no fault injected.

Run: .venv/bin/python -m benchmarks.breaker_load [--hogs 3] [--seconds 10] [--workers 200]

Starts a private redis-server and ``--hogs`` busy-loop OS processes, then has
``--workers`` concurrent tasks read seeded entities through a session for
``--seconds``, once per breaker configuration: the old defaults (memory_timeout
0.5 s, fail_max 5, reset_timeout 30 s) and the current ones. Nothing is wrong
with Redis, so every opening of the breaker is a false one. Each row gives the
openings, the reads, the share answered by Redis (the rest went to the fallback)
and the slowest read.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import DictFallback
from tests.support.servers import redis_server

IDS = [f"p{i}" for i in range(200)]
OLD = {"memory_timeout": 0.5, "breaker": {"fail_max": 5, "reset_timeout": 30.0}}
CURRENT: dict[str, Any] = {}  # the settings' defaults


class Person(Model):
    id: str = Key()
    name: str = Field()


class _Openings(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().endswith("-> open"):
            self.count += 1


@contextmanager
def cpu_hogs(count: int) -> Iterator[None]:
    """``count`` OS processes spinning on a CPU each until the block ends."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


async def run(url: str, options: dict[str, Any], seconds: float, workers: int) -> dict[str, Any]:
    """Reads for ``seconds`` by ``workers`` tasks; openings of the breakers, reads, slowest."""
    openings = _Openings()
    logger = logging.getLogger("dbdaora")
    logger.addHandler(openings)
    fallback = DictFallback()
    await fallback.put_many(Person._meta, IDS, [Person(id=i, name=i) for i in IDS])
    slowest = 0.0
    async with Session(memory=url, fallback=fallback, **options) as session:
        people = Person.objects.using(session)
        await people.get_many(IDS)  # fill Redis
        end = time.monotonic() + seconds

        async def worker(number: int) -> None:
            nonlocal slowest
            index = number
            while time.monotonic() < end:
                started = time.monotonic()
                await people.get(IDS[index % len(IDS)])
                slowest = max(slowest, time.monotonic() - started)
                index += workers

        await asyncio.gather(*(worker(n) for n in range(workers)))
        stats = session.stats()["models"]["Person"]
    logger.removeHandler(openings)
    reads = stats["redis_hits"] + stats["fallback_reads"] + stats["cache_hits"]
    return {
        "openings": openings.count,
        "reads": reads,
        "from_redis": stats["redis_hits"] / max(reads, 1),
        "slowest": slowest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hogs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with redis_server() as server, cpu_hogs(args.hogs):
        for _ in range(args.rounds):
            for name, options in (("old defaults", OLD), ("current defaults", CURRENT)):
                found = asyncio.run(run(server.url, options, args.seconds, args.workers))
                rows.append((name, found))
                print(
                    f"{name:17} hogs={args.hogs} workers={args.workers} "
                    f"openings={found['openings']:3} reads={found['reads']:7} "
                    f"from_redis={found['from_redis']:6.1%} slowest={found['slowest']:.2f}s",
                    flush=True,
                )


if __name__ == "__main__":
    main()
