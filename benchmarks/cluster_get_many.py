"""get_many of 100 ids spread over a 3-master Redis Cluster against the same on one node,
and on the cluster with one master hung.

Run: .venv/bin/python -m benchmarks.cluster_get_many
(starts its own private redis-server and a private 3-master cluster with
``cluster-require-full-coverage no``)

Both sessions read the same 100 entities, all in Redis, interleaved round by
round; the figures are medians of per-call time over the rounds. On one node
get_many is one pipeline on one connection; on the cluster it is one pipeline
per master, sent concurrently, and the results put back in the order asked.

Then one master is hung (SIGSTOP) and a session with the default breakers and
``memory_timeout`` reads the same 100 ids: first until that master's breaker is
open (the calls that wait for the timeout are not timed), then for
``DOWN_SECONDS``, as throughput, with the share of entities served from Redis
(the others from the fallback). All up, the same session and measure give the
baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import DictFallback
from tests.support.cluster_server import ClusterServer, redis_cluster
from tests.support.servers import redis_server

ROUNDS = 9
CALLS = 200
IDS = [f"user{i}" for i in range(100)]
DOWN_SECONDS = 3.0
LENIENT = ("--cluster-node-timeout", "2000", "--cluster-require-full-coverage", "no")


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)


async def per_call(session: Session) -> float:
    people = Person.objects.using(session)
    started = time.perf_counter()
    for _ in range(CALLS):
        found = await people.get_many(IDS)
        assert len(found) == len(IDS)
    return (time.perf_counter() - started) / CALLS


async def throughput(session: Session, seconds: float) -> tuple[float, float]:
    """get_many(100) calls a second over ``seconds``, and the share of entities from Redis."""
    people = Person.objects.using(session)
    stats = session.stats_for(Person._meta)
    hits, reads = stats.redis_hits, stats.fallback_reads
    calls = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        found = await people.get_many(IDS)
        assert len(found) == len(IDS)
        calls += 1
    took = time.perf_counter() - started
    hits, reads = stats.redis_hits - hits, stats.fallback_reads - reads
    return calls / took, hits / (hits + reads)


async def one_down(cluster: ClusterServer) -> None:
    """Throughput and share from Redis, all masters up, then one master hung."""
    victim = cluster.nodes[1]
    on_victim = sum(cluster.node_of(f"person:{id_}".encode()) is victim for id_ in IDS)
    async with Session(memory=cluster.url, fallback=DictFallback()) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=id_, name=id_.upper(), age=i) for i, id_ in enumerate(IDS)))
        up_rate, up_share = await throughput(session, DOWN_SECONDS)
        victim.pause()
        try:
            opened = time.perf_counter()
            while session.stats()["breakers"].get("nodes", {}).get(victim.address) != "open":
                await people.get_many(IDS)
            opened = time.perf_counter() - opened
            down_rate, down_share = await throughput(session, DOWN_SECONDS)
        finally:
            victim.resume()
        shared = session.stats()["breakers"]["memory"]
    print(f"ids on the hung master     : {on_victim} of {len(IDS)}")
    print(f"all up   get_many(100)/s   : {up_rate:7.0f}  from Redis {up_share:6.1%}")
    print(f"one hung get_many(100)/s   : {down_rate:7.0f}  from Redis {down_share:6.1%}")
    print(f"its breaker open after     : {opened:.2f} s; the session's own breaker: {shared}")


async def main(single_url: str, cluster: ClusterServer) -> None:
    spread = Counter(cluster.node_of(f"person:{id_}".encode()).port for id_ in IDS)
    async with (
        Session(memory=single_url, fallback=DictFallback(), breaker=None) as single,
        Session(memory=cluster.url, fallback=DictFallback(), breaker=None) as clustered,
    ):
        for session in (single, clustered):
            await Person.objects.using(session).add(
                *(Person(id=id_, name=id_.upper(), age=i) for i, id_ in enumerate(IDS))
            )
            await per_call(session)
        single_times, cluster_times = [], []
        for _ in range(ROUNDS):
            single_times.append(await per_call(single))
            cluster_times.append(await per_call(clustered))
    on_one, on_cluster = statistics.median(single_times), statistics.median(cluster_times)
    print(f"ids per master  : {sorted(spread.values())}")
    print(f"get_many(100), one node : {on_one * 1e3:7.3f} ms")
    print(f"get_many(100), cluster  : {on_cluster * 1e3:7.3f} ms")
    print(f"ratio cluster / one node: {on_cluster / on_one:.2f}x")
    cluster.flushall()
    await one_down(cluster)


if __name__ == "__main__":
    with redis_server() as server, redis_cluster(options=LENIENT) as cluster:
        asyncio.run(main(server.url, cluster))
