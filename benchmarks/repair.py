"""What repair costs a healthy system (issue 14): nothing to repair, Redis up.

Run: .venv/bin/python -m benchmarks.repair   [--calls 200000]

Two figures:

``per call``
    ``get(id)`` on ``memory://`` (the Redis side whose calls cost least, so the
    guard's share is largest) with the default ``repair_interval`` against a
    session whose next repair is pushed out of reach: the difference is the time
    check every Redis call makes, plus one repair per interval.
``one check``
    ``repairs(1000)`` on an empty ``dbdaora_repairs`` table in a SQLite file: the
    fallback read a session makes once per ``repair_interval`` when there is
    nothing to repair.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.backends.fallback.sql.store import SQLFallback
from tests.support.models import Person


async def _gets(session: Session, calls: int, never: bool) -> float:
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    await people.get("a")
    if never:
        session._repairs.due = float("inf")
    start = time.perf_counter()
    for _ in range(calls):
        await people.get("a")
    return (time.perf_counter() - start) / calls


async def per_call(calls: int) -> tuple[float, float]:
    with_repair, without = [], []
    for _ in range(5):
        for never, into in ((False, with_repair), (True, without)):
            session = Session(memory=InProcessRedis(), fallback=DictFallback(), cache=None)
            into.append(await _gets(session, calls, never))
    return statistics.median(with_repair), statistics.median(without)


async def one_check() -> float:
    with tempfile.TemporaryDirectory() as directory:
        store = SQLFallback(f"sqlite+aiosqlite:///{directory}/repairs.db")
        await store.create_all([])
        times = []
        for _ in range(200):
            start = time.perf_counter()
            await store.repairs(1000)
            times.append(time.perf_counter() - start)
        await store.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200_000)
    calls = parser.parse_args().calls
    with_repair, without = asyncio.run(per_call(calls))
    print(
        f"per call: {with_repair * 1e6:.2f} us with repair, {without * 1e6:.2f} us without "
        f"({(with_repair - without) * 1e9:+.0f} ns, ratio {with_repair / without:.3f})"
    )
    print(f"one check (SQLite, empty table): {one_check_time() * 1e6:.0f} us")


def one_check_time() -> float:
    return asyncio.run(one_check())


if __name__ == "__main__":
    main()
