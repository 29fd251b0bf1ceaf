"""get_many of 100 Redis misses against 100 single gets, on a SQLite fallback.

Both read the same 100 entities through to a SQLite file, with the Redis side
(memory://) empty each round: get_many asks SQLite once (one SELECT ... IN), the
single gets ask it 100 times. Prints the median of each and their ratio.

    .venv/bin/python benchmarks/sql_get_many.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import InProcessRedis
from dbdaora.backends.fallback.sql.store import SQLFallback

ROUNDS = 30
COUNT = 100


class Reader(Model):
    id: str = Key()
    name: str = Field()
    visits: int = Field(default=0)


async def measure(fallback: SQLFallback) -> tuple[float, float]:
    ids = [f"r{i}" for i in range(COUNT)]
    await fallback.put_many(
        Reader._meta, ids, [Reader(id=i, name=i.upper(), visits=n) for n, i in enumerate(ids)]
    )
    batched, single = [], []
    for _ in range(ROUNDS):
        readers = Reader.objects.using(Session(memory=InProcessRedis(), fallback=fallback))
        started = time.perf_counter()
        assert len(await readers.get_many(ids)) == COUNT
        batched.append(time.perf_counter() - started)

        readers = Reader.objects.using(Session(memory=InProcessRedis(), fallback=fallback))
        started = time.perf_counter()
        for entity_id in ids:
            await readers.get(entity_id)
        single.append(time.perf_counter() - started)
    return statistics.median(batched), statistics.median(single)


async def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        fallback = SQLFallback(f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}")
        try:
            batched, single = await measure(fallback)
        finally:
            await fallback.close()
    print(f"get_many of {COUNT} misses: {batched * 1000:8.2f} ms (median of {ROUNDS})")
    print(f"{COUNT} single gets:        {single * 1000:8.2f} ms (median of {ROUNDS})")
    print(f"single gets / get_many:  {single / batched:8.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
