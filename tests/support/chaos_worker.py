"""A worker process of the chaos test (``tests/contract/test_chaos.py``).

``python -m tests.support.chaos_worker REDIS FALLBACK INDEX PROCESSES KEYS UNTIL LOG``

One session (``repair_interval=1``, other settings the defaults, no cache) on the
shared Redis and fallback. One writer coroutine writes the keys this process owns
(``k<i>`` with ``i % PROCESSES == INDEX``), one after another, each ``name`` being
``"<INDEX>:<seq>"`` with ``seq`` rising within the process; three reader
coroutines read random keys of every process. It runs until ``time.monotonic()``
reaches ``UNTIL`` (CLOCK_MONOTONIC: one clock for every process of the machine).

Each operation is one JSON line of ``LOG``: ``{"op": "w", "key", "seq", "start",
"end"}`` plus ``"error"`` when the write raised (it is then not acknowledged);
``{"op": "r", "key", "start", "end", "seq"}`` for a read, ``"value"`` holding the
name read, or ``"error"`` and whether a plain redis-py ``EXISTS`` saw the key in
Redis just before and just after the read (``null``: Redis did not answer it).
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from typing import IO, Any

import redis.asyncio as aioredis

from dbdaora import Session
from tests.support.models import Person

READERS = 3
OP_BOUND = 10.0  # no operation of the session may take longer; one that does is an error
PAUSE = 0.002


def key_name(i: int) -> str:
    return f"k{i:03d}"


class Worker:
    def __init__(self, index: int, processes: int, keys: int, until: float, log: IO[str]) -> None:
        self.index = index
        self.keys = [key_name(i) for i in range(keys)]
        self.own = [key_name(i) for i in range(keys) if i % processes == index]
        self.until = until
        self.log = log
        self.seq = 0

    def record(self, entry: dict[str, Any]) -> None:
        self.log.write(json.dumps(entry) + "\n")

    async def write(self, people: Any) -> None:
        rng = random.Random(self.index)
        while time.monotonic() < self.until:
            self.seq += 1
            key = rng.choice(self.own)
            entry: dict[str, Any] = {"op": "w", "key": key, "seq": self.seq}
            entry["start"] = time.monotonic()
            try:
                person = Person(id=key, name=f"{self.index}:{self.seq}", age=self.seq)
                await asyncio.wait_for(people.add(person), OP_BOUND)
            except Exception as exc:  # every failure is logged for the checker
                entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["end"] = time.monotonic()
            self.record(entry)
            await asyncio.sleep(PAUSE)

    async def read(self, people: Any, raw: aioredis.Redis, reader: int) -> None:
        rng = random.Random(self.index * 100 + reader)
        while time.monotonic() < self.until:
            key = rng.choice(self.keys)
            entry: dict[str, Any] = {"op": "r", "key": key}
            before = await self._exists(raw, key)
            entry["start"] = time.monotonic()
            try:
                person = await asyncio.wait_for(people.get(key), OP_BOUND)
                entry["value"] = person.name
            except Exception as exc:  # every failure is logged for the checker
                entry["end"] = time.monotonic()
                entry["error"] = f"{type(exc).__name__}: {exc}"
                entry["before"] = before
                entry["after"] = await self._exists(raw, key)
            else:
                entry["end"] = time.monotonic()
            self.record(entry)
            await asyncio.sleep(PAUSE)

    @staticmethod
    async def _exists(raw: aioredis.Redis, key: str) -> bool | None:
        try:
            return bool(await asyncio.wait_for(raw.exists(f"person:{key}"), 0.3))
        except Exception:  # Redis not answering: it does not serve the key
            return None


async def main(memory: str, fallback: str, worker: Worker) -> None:
    session = Session(memory=memory, fallback=fallback, repair_interval=1.0, cache=None)
    raw = aioredis.Redis.from_url(memory, socket_timeout=0.3, socket_connect_timeout=0.3)
    people = Person.objects.using(session)
    try:
        await asyncio.gather(
            worker.write(people), *(worker.read(people, raw, r) for r in range(READERS))
        )
    finally:
        await raw.aclose()
        await session.close()


if __name__ == "__main__":
    memory_url, fallback_url, index, processes, keys, until, path = sys.argv[1:]
    # Line-buffered: a line is in the file once its operation is done.
    with open(path, "w", buffering=1) as log:
        chaos = Worker(int(index), int(processes), int(keys), float(until), log)
        asyncio.run(main(memory_url, fallback_url, chaos))
