"""The tracked session cache on a Redis Cluster (``redis+cluster://``), issue 16 part C.

Each master is watched by a connection of its own in BCAST mode (``wire.watchers``):
an outside write to a key on any master reaches the cache, and losing a master's
watching connection empties the cache.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.cluster import RedisCluster

from dbdaora import Session
from tests.support.cluster_server import ClusterServer
from tests.support.models import Person

CACHE = {"ttl": None, "max_size": 1000, "tracking": True}


def _ids_on_each_master(cluster: ClusterServer) -> list[str]:
    """One Person id whose Redis key each master serves."""
    ids: dict[int, str] = {}
    for i in range(1000):
        node = cluster.node_of(f"person:{i}".encode())
        ids.setdefault(node.port, str(i))
        if len(ids) == len(cluster.masters()):
            break
    return list(ids.values())


async def _until(check: Any, seconds: float = 2.0) -> float:
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < seconds, "not within the bound"
        await asyncio.sleep(0.001)
    return time.monotonic() - started


async def test_an_outside_write_on_each_master_invalidates(
    cluster_proc: ClusterServer, raw_cluster: RedisCluster
) -> None:
    """A key on each master, cached; an HSET by a plain client reaches the cache."""
    ids = _ids_on_each_master(cluster_proc)
    assert len(ids) == len(cluster_proc.masters())
    async with Session(memory=cluster_proc.url, fallback="memory://", cache=CACHE) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name="old") for i in ids))
        await people.get_many(ids)
        for i in ids:
            await people.get(i)
        hits = session.stats()["cache"]["hits"]
        assert session.stats()["cache"]["tracking"] is True
        for i in ids:
            raw_cluster.hset(f"person:{i}".encode(), "name", "new")

            async def new(i: str = i) -> bool:
                return bool((await people.get(i)).name == "new")

            delay = await _until(new)
            print(f"write on the master of person:{i} read after {delay * 1e3:.2f} ms")
        assert session.stats()["cache"]["hits"] > hits


async def test_losing_a_masters_watcher_empties_the_cache(
    cluster_proc: ClusterServer, raw_cluster: RedisCluster
) -> None:
    """CLIENT KILL on one master: the cache is emptied, and a write there is read once
    Redis answers again (the killed data connection fails one read, which the
    fallback answers)."""
    ids = _ids_on_each_master(cluster_proc)
    async with Session(memory=cluster_proc.url, fallback="memory://", cache=CACHE) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name="old") for i in ids))
        for i in ids:
            await people.get(i)
            await people.get(i)
        assert session.stats()["cache"]["entries"] == len(ids)
        flushes = session.stats()["cache"]["flushes"]
        master = cluster_proc.node_of(f"person:{ids[0]}".encode())
        with master.client() as client:
            client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

        async def flushed() -> bool:
            return bool(session.stats()["cache"]["flushes"] > flushes)

        await _until(flushed)
        assert session.stats()["cache"]["entries"] == 0
        raw_cluster.hset(f"person:{ids[0]}".encode(), "name", "new")

        async def new() -> bool:  # the first read may fail over to the fallback's "old"
            return bool((await people.get(ids[0])).name == "new")

        await _until(new)
