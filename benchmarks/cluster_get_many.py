"""get_many of 100 ids spread over a 3-master Redis Cluster against the same on one node.

Run: .venv/bin/python -m benchmarks.cluster_get_many
(starts its own private redis-server and a private 3-master cluster)

Both sessions read the same 100 entities, all in Redis, interleaved round by
round; the figures are medians of per-call time over the rounds. On one node
get_many is one pipeline on one connection; on the cluster it is one pipeline
per master, sent concurrently, and the results put back in the order asked.
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


if __name__ == "__main__":
    with redis_server() as server, redis_cluster() as cluster:
        asyncio.run(main(server.url, cluster))
