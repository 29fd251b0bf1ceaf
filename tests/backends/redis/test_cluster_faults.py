"""Redis Cluster failures, each on a private cluster of its own so the shared one stays
whole: a master killed or hung, the cluster down (CLUSTERDOWN), a slot migrated
while reads run.

A dead master's keys must fail fast as ``BackendError`` (what the Session's
breaker counts, and answers from the fallback), the other masters' keys must
keep coming from Redis, and nothing acknowledged may be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.exceptions import ClusterDownError

from dbdaora import BackendError, Session
from dbdaora.backends import DictFallback
from dbdaora.backends.redis.cluster import ClusterStore
from dbdaora.backends.redis.wire.cluster import RETRIES
from tests.support import claims
from tests.support.cluster_server import FAST_FAILURE, ClusterServer, NodeServer, redis_cluster
from tests.support.models import Person

# redis-py's asyncio cluster client drops (without closing) the connections it
# had to a master that died or hung, so their sockets are reported unclosed when
# collected. The collection is forced at each test's end, where this filter holds;
# leaks of dbdaora's own still fail every other test.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(autouse=True)
def _collect_dropped_connections() -> Iterator[None]:
    yield
    gc.collect()


# Seconds a call on a dead master may take: a refused connection, one re-read of
# the slot map and one retry (a pipeline waits 0.25 s before its retry).
FAIL_FAST = 1.5


@pytest.fixture
def lenient_cluster() -> Iterator[ClusterServer]:
    """A cluster of this test alone whose masters serve their slots when another is gone."""
    with redis_cluster(options=[*FAST_FAILURE, "--cluster-require-full-coverage", "no"]) as cluster:
        yield cluster


@pytest.fixture
def strict_cluster() -> Iterator[ClusterServer]:
    """A cluster of this test alone, as configured by default (full coverage required)."""
    with redis_cluster(options=FAST_FAILURE) as cluster:
        yield cluster


def _key(id_: str) -> bytes:
    return f"person:{id_}".encode()


def _ids_on(cluster: ClusterServer, node: NodeServer, count: int) -> list[str]:
    """``count`` ids whose hash key lives on ``node``."""
    ids: list[str] = []
    candidate = 0
    while len(ids) < count:
        id_ = f"p{candidate}"
        if cluster.node_of(_key(id_)) is node:
            ids.append(id_)
        candidate += 1
    return ids


def _split(cluster: ClusterServer, victim: NodeServer) -> tuple[list[str], list[str]]:
    """Two ids on the victim, and two on each other master."""
    others = [node for node in cluster.nodes if node is not victim]
    return _ids_on(cluster, victim, 2), [
        id_ for node in others for id_ in _ids_on(cluster, node, 2)
    ]


async def _fails_fast(call: Any, cause: type[BaseException], bound: float = FAIL_FAST) -> None:
    started = time.monotonic()
    with pytest.raises(BackendError) as error:
        await call
    took = time.monotonic() - started
    assert took < bound, f"took {took:.2f}s"
    assert isinstance(error.value.__cause__, cause), repr(error.value.__cause__)


def _marked_failed(cluster: ClusterServer, victim: NodeServer) -> bool:
    with cluster.live()[0].client() as client:
        nodes = client.execute_command("CLUSTER", "NODES")
    for line in nodes.decode().splitlines():
        _, address, flags, *_ = line.split()
        if address.startswith(f"127.0.0.1:{victim.port}@"):
            return "fail" in flags.split(",")
    raise LookupError(f"{victim.address} is not in CLUSTER NODES")


async def _wait(condition: Any, what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_killed_master_fails_fast_while_the_others_serve(
    lenient_cluster: ClusterServer,
) -> None:
    """A killed master fails fast as BackendError, the others serve from Redis, no write is lost."""
    cluster = lenient_cluster
    # The master of slot 0: also the client's default node, which it must replace.
    victim = cluster.nodes[0]
    dead, live = _split(cluster, victim)
    fallback = DictFallback()
    # No breaker: the store's own failures are what this test watches; the
    # breakers per master are test_cluster_nodes's.
    async with Session(memory=cluster.url, fallback=fallback, breaker=None) as session:
        people = Person.objects.using(session)
        store = session.memory
        acknowledged = {id_: Person(id=id_, name=f"{id_}-v1") for id_ in dead + live}
        await people.add(*acknowledged.values())
        victim.kill()

        for id_ in dead:
            await _fails_fast(store.hgetall(_key(id_)), redis.ConnectionError)
        await _fails_fast(
            store.hgetall_many([_key(id_) for id_ in live + dead]), redis.ConnectionError
        )
        for id_ in live:
            assert (await store.hgetall(_key(id_)))[b"name"] == acknowledged[id_].name.encode()

        stats = session.stats_for(Person._meta)
        fallback_reads, redis_hits = stats.fallback_reads, stats.redis_hits
        for id_ in dead + live:
            assert await people.get(id_) == acknowledged[id_]
        assert stats.fallback_reads - fallback_reads == len(dead)
        assert stats.redis_hits - redis_hits == len(live)

        await _wait(
            lambda: _marked_failed(cluster, victim), "the masters to mark the victim failed"
        )
        await _fails_fast(store.hgetall(_key(dead[0])), redis.ConnectionError)
        for id_ in live:
            assert (await store.hgetall(_key(id_)))[b"name"] == acknowledged[id_].name.encode()

        for id_ in dead + live:
            acknowledged[id_] = Person(id=id_, name=f"{id_}-v2")
            await people.add(acknowledged[id_])
        for id_ in dead + live:
            assert await people.get(id_) == acknowledged[id_]
    stored = await fallback.get_many(Person._meta, dead + live)
    assert stored == [acknowledged[id_] for id_ in dead + live]


async def test_hung_master_is_a_backend_error_within_its_timeouts(
    lenient_cluster: ClusterServer,
) -> None:
    """A master that accepts but never answers fails after the URL's socket timeouts."""
    cluster = lenient_cluster
    victim = cluster.nodes[2]
    dead, live = _split(cluster, victim)
    store = ClusterStore(f"{cluster.url}?socket_timeout=0.3&socket_connect_timeout=0.3")
    for id_ in dead + live:
        await claims.put_hashes(
            store, [(_key(id_), f"person:not-found:{id_}".encode(), {b"id": id_})], 60
        )
    victim.pause()
    try:
        bound = (1 + RETRIES) * 0.3 + 1.0
        await _fails_fast(store.hgetall(_key(dead[0])), redis.TimeoutError, bound)
        for id_ in live:
            assert await store.hgetall(_key(id_)) == {b"id": id_.encode()}
    finally:
        victim.resume()
        await store.close()


async def test_cluster_down_is_a_backend_error(strict_cluster: ClusterServer) -> None:
    """CLUSTERDOWN, once a master is lost and full coverage is required, fails fast."""
    cluster = strict_cluster
    victim = cluster.nodes[1]
    _, live = _split(cluster, victim)
    fallback = DictFallback()
    async with Session(memory=cluster.url, fallback=fallback, breaker=None) as session:
        people = Person.objects.using(session)
        await people.add(Person(id=live[0], name="kept"))
        victim.kill()
        survivor = cluster.live()[0]

        def down() -> bool:
            with survivor.client() as client:
                return bool(client.cluster("INFO")["cluster_state"] == "fail")

        await _wait(down, "cluster_state:fail")
        await _fails_fast(session.memory.hgetall(_key(live[0])), ClusterDownError)
        assert (await people.get(live[0])).name == "kept"
        assert session.stats_for(Person._meta).errors >= 1


async def test_slot_migration_while_reading(strict_cluster: ClusterServer) -> None:
    """Every read stays correct while slots move between masters, fills and evictions too."""
    cluster = strict_cluster
    source, target = cluster.nodes[0], cluster.nodes[1]
    moving = _ids_on(cluster, source, 6)
    ids = moving + _ids_on(cluster, cluster.nodes[2], 6)
    expected = {id_: Person(id=id_, name=id_.upper(), age=len(id_)) for id_ in ids}
    async with Session(memory=cluster.url, fallback=DictFallback(), breaker=None) as session:
        people = Person.objects.using(session)
        await people.add(*expected.values())
        with cluster.live()[0].client() as client:
            slots = {int(client.execute_command("CLUSTER", "KEYSLOT", _key(id_))) for id_ in moving}
        wrong: list[tuple[str, Any]] = []
        reads = 0
        running = True

        async def reader(seed: int) -> None:
            nonlocal reads
            rng = random.Random(seed)
            while running:
                asked = rng.sample(ids, 3)
                if rng.random() < 0.3:
                    # Only to make the next read fill; one lost to a redirect is fine.
                    with contextlib.suppress(BackendError):
                        await session.memory.evict([_key(asked[0])])
                got = [await people.get(asked[0]), *await people.get_many(asked[1:])]
                wrong.extend(
                    (id_, p) for id_, p in zip(asked, got, strict=True) if p != expected[id_]
                )
                reads += 3
                await asyncio.sleep(0)

        readers = [asyncio.ensure_future(reader(seed)) for seed in range(4)]
        for slot in sorted(slots):
            await asyncio.to_thread(cluster.migrate_slot, slot, source, target, 0.05)
        await asyncio.sleep(0.1)
        running = False
        await asyncio.gather(*readers)
        assert wrong == []
        assert reads > 100
        assert all(cluster.node_of(_key(id_)) is target for id_ in moving)
        # Most reads came from Redis. A few redirected ones may fail and be answered
        # from the fallback: redis-py's asyncio client can send ASKING on another
        # pooled connection than the command it is for (see the README).
        assert session.stats_for(Person._meta).redis_hits > reads / 2
        assert [p.name for p in await people.get_many(moving)] == [id_.upper() for id_ in moving]
