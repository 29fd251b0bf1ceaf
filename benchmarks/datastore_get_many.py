"""get_many of 100 ids missing from Redis, through the Datastore fallback, vs 100 gets.

Starts a private Cloud Datastore emulator on a free loopback port, stores 100
entities in it, then in each round reads them all with an empty ``memory://``
Redis side: once with one ``get_many`` (one lookup RPC) and once with 100
single ``get`` calls, one after the other. Prints both medians and the ratio.

    .venv/bin/python -m benchmarks.datastore_get_many [--rounds 7] [--size 100]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import InProcessRedis
from dbdaora.backends.fallback.datastore.store import DatastoreFallback
from tests.support.datastore_server import datastore_emulator


class Item(Model):
    id: str = Key()
    name: str = Field()
    price: float = Field()
    tags: list[str] = Field(factory=list)


async def _timed(fallback: DatastoreFallback, ids: list[str], batched: bool) -> float:
    """Seconds to read every id through a fresh, empty Redis side."""
    async with Session(memory=InProcessRedis(), fallback=fallback) as session:
        items = Item.objects.using(session)
        started = time.perf_counter()
        if batched:
            found = await items.get_many(ids)
        else:
            found = [await items.get(entity_id) for entity_id in ids]
        elapsed = time.perf_counter() - started
    assert [item.id for item in found] == ids
    return elapsed


async def _run(url: str, rounds: int, size: int) -> None:
    ids = [f"item-{i:04}" for i in range(size)]
    fallback = DatastoreFallback(url)
    try:
        items = [Item(id=i, name=f"Item {i}", price=9.5, tags=["a", "b"]) for i in ids]
        await fallback.put_many(Item._meta, ids, items)
        await _timed(fallback, ids, batched=True)  # warm the channel and the emulator
        await _timed(fallback, ids, batched=False)
        batched, single = [], []
        for _ in range(rounds):
            batched.append(await _timed(fallback, ids, batched=True))
            single.append(await _timed(fallback, ids, batched=False))
    finally:
        await fallback.close()
    many_ms = statistics.median(batched) * 1000
    gets_ms = statistics.median(single) * 1000
    print(f"{size} ids missing from Redis, Datastore emulator, median of {rounds} rounds")
    print(f"  get_many({size} ids): {many_ms:8.1f} ms")
    print(f"  {size} x get():      {gets_ms:8.1f} ms")
    print(f"  ratio:              {gets_ms / many_ms:8.1f}x faster batched")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    with datastore_emulator() as emulator:
        asyncio.run(_run(emulator.url("bench"), args.rounds, args.size))


if __name__ == "__main__":
    main()
