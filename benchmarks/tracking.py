"""The tracked session cache (issue 16), on a private redis-server, in one run.

Run: .venv/bin/python -m benchmarks.tracking   [--scale 1.0]

``cached get / HGETALL``
    A get the tracked cache answers, against a hand-written redis-py asyncio
    ``HGETALL`` of the same hash (the ORM's own Redis get is in ``benchmarks.speed``).
``invalidation delay``
    An outside redis-py client HSETs a cached key; the delay from its reply to
    the first get that reads the new value, the reader polling and yielding.
``tracking on / off``
    A get the cache misses (keys cycle through a cache of 10 entries, so every
    get reads Redis) and an add of a key read before, with ``tracking`` True
    against False: what CLIENT CACHING, the key's tracking and its invalidation add.
``memory per entity``
    tracemalloc's growth over 10,000 cached entities, tracked and not.
``mixed load``
    Two OS processes, each a session with the tracked cache over 50 shared keys,
    90 % gets and 10 % adds, for a few seconds. Each add writes a new version
    (a Redis INCR) in ``age``; each process adds to its half of the keys only,
    so a key's versions reach Redis in order. A read is stale after delivery when it returns a
    version older than a write acknowledged before an invalidation of its key
    that its process had handled before the read began: there must be none.
    Reads older than an acknowledged write whose invalidation had not yet been
    handled are counted apart (that is the invalidation delay).

Taken in turns: tracked then hand-written, the median over rounds; tracked then
untracked in 25 slices each, the fastest slice of each (on a busy machine, the
one least disturbed by other processes).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import redis.asyncio

from dbdaora import Session
from dbdaora.backends import DictFallback
from tests.support.models import Person
from tests.support.servers import redis_server

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = 5
SLICES = 5
MIXED_KEYS = 50


def _cache(tracking: bool, max_size: int = 10_000) -> dict[str, Any]:
    return {"ttl": None, "max_size": max_size, "tracking": tracking}


async def _per_call(calls: Callable[[int], Awaitable[Any]], count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        await calls(i)
    return (time.perf_counter() - started) / count


async def cached_get_against_hgetall(url: str, port: int, count: int) -> tuple[float, float]:
    """Seconds per cached get, and per hand-written HGETALL."""
    client = redis.asyncio.Redis(port=port)
    async with Session(memory=url, fallback=DictFallback(), cache=_cache(True)) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="A", age=1))
        await people.get("a")

        async def cached(_: int) -> Any:
            return await people.get("a")

        async def hand(_: int) -> Any:
            return await client.hgetall(b"person:a")

        gets, raws = [], []
        for _ in range(ROUNDS):
            gets.append(await _per_call(cached, count))
            raws.append(await _per_call(hand, count))
    await client.aclose()
    return statistics.median(gets), statistics.median(raws)


async def invalidation_delays(url: str, port: int, count: int) -> list[float]:
    """Seconds from an outside HSET's reply to the first get reading it, per write."""
    writer = redis.asyncio.Redis(port=port)
    delays = []
    async with Session(memory=url, fallback=DictFallback(), cache=_cache(True)) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="d", name="0"))
        for i in range(1, count + 1):
            await people.get("d")
            await people.get("d")
            await writer.hset(b"person:d", b"name", str(i).encode())
            written = time.perf_counter()
            while True:
                if (await people.get("d")).name == str(i):
                    break
                await asyncio.sleep(0)  # the reader yields between gets
            delays.append(time.perf_counter() - written)
    await writer.aclose()
    return delays


async def on_off(url: str, count: int) -> dict[str, tuple[float, float]]:
    """Per op, seconds per call with tracking on and off (a missed get; an add)."""
    names = [f"m{i}" for i in range(200)]
    times: dict[str, dict[bool, list[float]]] = {"get": {True: [], False: []}}
    times["add"] = {True: [], False: []}
    fallback = DictFallback()
    sessions = {
        tracking: Session(memory=url, fallback=fallback, cache=_cache(tracking, max_size=10))
        for tracking in (True, False)
    }
    await Person.objects.using(sessions[False]).add(*(Person(id=n, name=n) for n in names))
    count = max(2, count // SLICES)
    for _ in range(ROUNDS * SLICES):  # on and off take turns, slice by slice
        for tracking, session in sessions.items():
            people = Person.objects.using(session)
            spent = [0.0]

            async def get(i: int, people: Any = people) -> Any:
                return await people.get(names[i % len(names)])

            async def add(i: int, people: Any = people, spent: list[float] = spent) -> None:
                name = names[i % len(names)]
                await people.get(name)  # tracked: the add's invalidation comes back
                started = time.perf_counter()
                await people.add(Person(id=name, name=name, age=i))
                spent[0] += time.perf_counter() - started

            times["get"][tracking].append(await _per_call(get, count))
            await _per_call(add, count)
            times["add"][tracking].append(spent[0] / count)
    for session in sessions.values():
        await session.close()
    # The fastest slice of each: on a busy machine, the one least disturbed by others.
    return {op: (min(by[True]), min(by[False])) for op, by in times.items()}


async def memory_per_entity(url: str, count: int) -> dict[bool, float]:
    """Bytes tracemalloc sees grow per cached entity, tracked and not."""
    names = [f"e{i}" for i in range(count)]
    fallback = DictFallback()
    result = {}
    for tracking in (True, False):
        async with Session(memory=url, fallback=fallback, cache=_cache(tracking)) as session:
            people = Person.objects.using(session)
            await people.add(*(Person(id=n, name=f"name {n}", age=30) for n in names))
            await people.get_many(names)  # the Redis reads are tracked from here
            assert session.cache is not None
            session.cache.flush()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for name in names:
                await people.get(name)
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            result[tracking] = (after - before) / count
    return result


class _Handled:
    """A second listener on the session's connection: when each invalidation was handled."""

    def __init__(self) -> None:
        self.at: dict[bytes, list[float]] = {}
        self.flushed: list[float] = []

    def invalidate(self, keys: Sequence[bytes]) -> None:
        now = time.time()
        for key in keys:
            self.at.setdefault(key, []).append(now)

    def flush(self) -> None:
        self.flushed.append(time.time())


async def worker(url: str, fallback: str, seconds: float, lane: int) -> None:
    """One process of the mixed load; prints its reads, writes and handled invalidations."""
    rng = random.Random(lane)
    counter = redis.asyncio.Redis.from_url(url)
    reads, writes = [], []
    async with Session(memory=url, fallback=fallback, cache=_cache(True)) as session:
        handled = _Handled()
        assert session.memory.track(handled)
        people = Person.objects.using(session)
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            index = rng.randrange(MIXED_KEYS)
            if rng.random() < 0.1:
                # Each process writes its half of the keys: a key's versions then
                # reach Redis in the order they were drawn (two racing writers'
                # adds may land in either order, and a version order is no
                # commit order then).
                key = f"x{index - index % 2 + lane}"
                version = int(await counter.incr(f"version:{key}"))
                await people.add(Person(id=key, name=key, age=version))
                writes.append((key, version, time.time()))
            else:
                key = f"x{index}"
                started = time.time()
                reads.append((key, (await people.get(key)).age, started))
            await asyncio.sleep(0)
        stats = session.stats()["cache"]
        session.memory.untrack(handled)
    await counter.aclose()
    handled_at = {key.decode(): times for key, times in handled.at.items()}
    report = {"reads": reads, "writes": writes, "handled": handled_at, "stats": stats}
    print(json.dumps({**report, "flushed": handled.flushed}))


def _stale(runs: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Reads in all, stale after delivery, and older than an acknowledged write."""
    acked: dict[str, list[tuple[float, int]]] = {}
    for run in runs:
        for key, version, at in run["writes"]:
            acked.setdefault(key, []).append((at, version))
    for writes in acked.values():
        writes.sort()
    total = after_delivery = undelivered = 0
    for run in runs:
        handled = {
            key.removeprefix("person:"): sorted(times + run["flushed"])
            for key, times in run["handled"].items()
        }
        for key, version, started in run["reads"]:
            total += 1
            writes = acked.get(key, [])
            newer = [(at, v) for at, v in writes if at < started and v > version]
            if not newer:
                continue
            times = handled.get(key, sorted(run["flushed"]))
            first_ack = min(at for at, _ in newer)
            # A handled invalidation between the newer write's reply and the read.
            i = bisect.bisect_left(times, first_ack)
            if i < len(times) and times[i] < started:
                after_delivery += 1
            else:
                undelivered += 1
    return total, after_delivery, undelivered


async def mixed(url: str, seconds: float, directory: Path) -> tuple[int, float, int, int]:
    """Reads and writes of two processes: ops, ops per second, stale after delivery, undelivered."""
    fallback = f"sqlite+aiosqlite:///{directory / 'mixed.db'}"
    async with Session(memory=url, fallback=fallback, expire_time=3600) as session:
        await session.fallback.create_all([Person._meta])
        names = [f"x{i}" for i in range(MIXED_KEYS)]
        await Person.objects.using(session).add(*(Person(id=n, name=n, age=0) for n in names))
    processes = [
        await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "benchmarks.tracking", "--worker"),
            *(url, fallback, str(seconds), str(lane)),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        for lane in (0, 1)
    ]
    outputs = await asyncio.gather(*(p.communicate() for p in processes))
    runs = []
    for process, (out, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            raise RuntimeError(err.decode())
        runs.append(json.loads(out))
    total, after_delivery, undelivered = _stale(runs)
    ops = total + sum(len(run["writes"]) for run in runs)
    return ops, ops / seconds, after_delivery, undelivered


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms"


async def run(scale: float, directory: Path) -> dict[str, float]:
    figures: dict[str, float] = {}
    with redis_server() as server:
        url, port = server.url, server.port
        cached, hand = await cached_get_against_hgetall(url, port, max(10, int(5000 * scale)))
        figures["cached_get_speedup"] = hand / cached
        print(
            f"cached get {cached * 1e6:.2f} us, HGETALL {hand * 1e6:.2f} us: {hand / cached:.0f}x"
        )
        delays = sorted(await invalidation_delays(url, port, max(10, int(500 * scale))))
        p50, p99 = delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        figures["delay_p50"], figures["delay_p99"] = p50, p99
        print(f"invalidation delay over {len(delays)} writes: p50 {_ms(p50)}, p99 {_ms(p99)}")
        for op, (on, off) in (await on_off(url, max(10, int(2000 * scale)))).items():
            figures[f"{op}_on_off"] = on / off
            print(f"{op}: tracking on {on * 1e6:.1f} us, off {off * 1e6:.1f} us: {on / off:.2f}")
        sizes = await memory_per_entity(url, max(10, int(10_000 * scale)))
        figures["bytes_tracked"], figures["bytes_untracked"] = sizes[True], sizes[False]
        print(f"memory per cached entity: tracked {sizes[True]:.0f} B, not {sizes[False]:.0f} B")
        ops, rate, stale, undelivered = await mixed(url, max(0.5, 5 * scale), directory)
        figures["mixed_ops_per_second"], figures["stale_after_delivery"] = rate, stale
        print(
            f"mixed 90/10, two processes: {ops} ops, {rate:.0f} ops/s; stale after delivery "
            f"{stale}; older than an acknowledged write, not yet delivered {undelivered}"
        )
    return figures


def main(scale: float = 1.0) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dbdaora-tracking-") as directory:
        return asyncio.run(run(scale, Path(directory)))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        url, fallback, seconds, lane = sys.argv[2:6]
        asyncio.run(worker(url, fallback, float(seconds), int(lane)))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--scale", type=float, default=1.0)
        main(parser.parse_args().scale)
