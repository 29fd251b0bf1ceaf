"""A Redis Cluster node by node: a breaker, a probe and a repair per master.

A hung or dead master sends only its own keys to the fallback, and is refused
at once once its breaker is open; the other masters' keys keep coming from
Redis. Writes to its keys are repaired when it answers again, before it serves
them. A replica promoted in a dead master's place is followed, and its older
copies are swept (a new run_id). With full coverage required, CLUSTERDOWN is the
whole cluster's outage: the session's own breaker opens.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbdaora import Session
from dbdaora.backends import DictFallback
from dbdaora.backends.fallback.sql.store import SQLFallback
from tests.support.cluster_server import FAST_FAILURE, ClusterServer, NodeServer, redis_cluster
from tests.support.models import Person

# redis-py's asyncio cluster client drops (without closing) its connections to a
# master that died or hung; see test_cluster_faults.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

LENIENT = [*FAST_FAILURE, "--cluster-require-full-coverage", "no"]
BREAKER = {"fail_max": 3, "reset_timeout": 30, "probe_interval": 0.5}
TIMEOUT = 0.5


@pytest.fixture(autouse=True)
def _collect_dropped_connections() -> Iterator[None]:
    yield
    gc.collect()


@pytest.fixture(scope="module")
def lenient_cluster() -> Iterator[ClusterServer]:
    """Three masters that serve their slots while another is gone, shared by this module."""
    with redis_cluster(options=LENIENT) as cluster:
        yield cluster


def _key(id_: str) -> bytes:
    return f"person:{id_}".encode()


def _ids_on(cluster: ClusterServer, node: NodeServer, count: int, tag: str) -> list[str]:
    ids: list[str] = []
    candidate = 0
    while len(ids) < count:
        id_ = f"{tag}{candidate}"
        if cluster.node_of(_key(id_)) is node:
            ids.append(id_)
        candidate += 1
    return ids


def _stats(session: Session) -> tuple[int, int]:
    stats = session.stats_for(Person._meta)
    return stats.redis_hits, stats.fallback_reads


def _node_state(session: Session, node: NodeServer) -> str:
    return str(session.stats()["breakers"].get("nodes", {}).get(node.address, "closed"))


async def _until(condition: Any, what: str, seconds: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_hung_master_sends_only_its_keys_to_the_fallback(
    lenient_cluster: ClusterServer, tmp_path: Path
) -> None:
    """One master hung: its keys from the fallback, refused at once once its breaker is
    open; the others' from Redis; its writes repaired when it answers, within ~2 s."""
    cluster = lenient_cluster
    cluster.flushall()
    victim = cluster.nodes[2]
    dead = _ids_on(cluster, victim, 6, "h")
    live = [id_ for node in cluster.nodes[:2] for id_ in _ids_on(cluster, node, 6, "h")]
    url = f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}"
    fallback = SQLFallback(url)
    await fallback.create_all([Person._meta])
    session = Session(
        memory=cluster.url, fallback=fallback, breaker=BREAKER, memory_timeout=TIMEOUT
    )
    people = Person.objects.using(session)
    before = {id_: Person(id=id_, name=f"{id_}-v1") for id_ in dead + live}
    await people.add(*before.values())
    victim.pause()
    try:
        # Until its breaker opens, reads of the victim's keys wait for the timeout.
        for id_ in dead[: BREAKER["fail_max"]]:
            assert await people.get(id_) == before[id_]
        assert _node_state(session, victim) == "open"
        assert session.stats()["breakers"]["memory"] == "closed"

        hits, reads = _stats(session)
        started = time.monotonic()
        for _ in range(20):
            for id_ in dead + live:
                assert await people.get(id_) == before[id_]
        assert await people.get_many(dead + live) == [before[id_] for id_ in dead + live]
        refused_in = time.monotonic() - started
        after_hits, after_reads = _stats(session)
        assert after_hits - hits == 21 * len(live)
        assert after_reads - reads == 21 * len(dead)
        # 126 reads of the hung master's keys, refused at once: waiting for the timeout
        # each, they would take 63 s (a tenth of that is a generous bound for a busy host).
        assert refused_in < 21 * len(dead) * TIMEOUT / 10, f"took {refused_in:.2f}s"

        written = {id_: Person(id=id_, name=f"{id_}-v2") for id_ in dead}
        await people.add(*written.values())  # acknowledged: the fallback has them
    finally:
        victim.resume()
    recovered = await _until(
        lambda: _node_state(session, victim) == "closed", "the victim's breaker to close", 5
    )
    assert recovered < 2.5
    hits, _ = _stats(session)
    for id_ in dead:
        assert await people.get(id_) == written[id_]
    for id_ in live:
        assert await people.get(id_) == before[id_]
    assert _stats(session)[0] - hits == len(live)  # the victim's keys were repaired: filled
    assert await fallback.repairs(100) == []
    await session.close()

    # A process that never saw the outage reads the acknowledged values.
    script = (
        "import asyncio, sys\n"
        "from dbdaora import Session\n"
        "from tests.support.models import Person\n"
        "async def main():\n"
        "    async with Session(memory=sys.argv[1], fallback=sys.argv[2]) as s:\n"
        "        people = Person.objects.using(s)\n"
        "        for id_ in sys.argv[3:]:\n"
        "            print((await people.get(id_)).name)\n"
        "        print(s.stats_for(Person._meta).redis_hits)\n"
        "asyncio.run(main())\n"
    )
    reader = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script, cluster.url, url, *dead],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(__file__).parents[3],
    )
    out = reader.stdout.split()
    assert out[:-1] == [written[id_].name for id_ in dead]
    assert int(out[-1]) == len(dead)  # from Redis: the repair deleted no fresh copy


async def test_get_many_splits_by_master(lenient_cluster: ClusterServer) -> None:
    """A get_many over every master, one down: the others' keys from Redis, in order."""
    cluster = lenient_cluster
    cluster.flushall()
    victim = cluster.nodes[1]
    dead = _ids_on(cluster, victim, 5, "m")
    live = [
        id_
        for node in (cluster.nodes[0], cluster.nodes[2])
        for id_ in _ids_on(cluster, node, 5, "m")
    ]
    ids = sorted(dead + live)
    expected = [Person(id=id_, name=id_.upper()) for id_ in ids]
    async with Session(
        memory=cluster.url, fallback=DictFallback(), breaker=BREAKER, memory_timeout=TIMEOUT
    ) as session:
        people = Person.objects.using(session)
        await people.add(*expected)
        victim.pause()
        try:
            for _ in range(BREAKER["fail_max"]):
                assert await people.get_many(ids) == expected
            assert _node_state(session, victim) == "open"
            hits, reads = _stats(session)
            assert await people.get_many(ids) == expected
            assert _stats(session) == (hits + len(live), reads + len(dead))
        finally:
            victim.resume()


@pytest.fixture
def replicated_cluster() -> Iterator[ClusterServer]:
    """Three masters with a replica each, promoted within seconds of a master's death."""
    options = [*LENIENT, "--cluster-replica-validity-factor", "0"]
    with redis_cluster(options=options, replicas=1) as cluster:
        yield cluster


async def test_promoted_replica_is_followed_and_its_old_copies_swept(
    replicated_cluster: ClusterServer,
) -> None:
    """A master killed, its replica (behind by one acknowledged write) promoted: the
    session follows it and never serves the older copy."""
    cluster = replicated_cluster
    victim = cluster.masters()[1]
    replica = cluster.replica_of(victim)
    ids = _ids_on(cluster, victim, 4, "f")
    others = [
        id_
        for node in cluster.masters()
        if node is not victim
        for id_ in _ids_on(cluster, node, 2, "f")
    ]
    async with Session(
        memory=cluster.url, fallback=DictFallback(), breaker=BREAKER, memory_timeout=TIMEOUT
    ) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=id_, name="old") for id_ in ids + others))
        with victim.client() as client:
            assert client.execute_command("WAIT", 1, 5000) == 1
            # The replica misses the next write, as asynchronous replication allows:
            # cut off (and frozen, so it cannot resync) when the master acknowledges it.
            replica.pause()
            client.client_kill_filter(_type="replica")
        await people.add(*(Person(id=id_, name="new") for id_ in ids))  # acknowledged
        victim.kill()
        replica.resume()
        await _until(lambda: replica.role() == "master", "the replica's promotion", 20)
        with replica.client() as client:  # it holds the older copy
            assert client.hget(_key(ids[0]), "name") == b"old"

        async def served_from_redis() -> bool:
            hits, _ = _stats(session)
            assert [p.name for p in await people.get_many(ids)] == ["new"] * len(ids)
            assert [p.name for p in await people.get_many(others)] == ["old"] * len(others)
            return _stats(session)[0] - hits == len(ids) + len(others)

        deadline = time.monotonic() + 15
        while not await served_from_redis():
            assert time.monotonic() < deadline, "the promoted replica never served"
            await asyncio.sleep(0.1)
        with replica.client() as client:
            assert client.hget(_key(ids[0]), "name") == b"new"


async def test_cluster_down_is_the_whole_cluster_down() -> None:
    """Full coverage required and a master lost: CLUSTERDOWN opens the session's own
    breaker, and every key is read from the fallback."""
    with redis_cluster(options=FAST_FAILURE) as cluster:
        victim = cluster.nodes[1]
        live = [
            id_
            for node in (cluster.nodes[0], cluster.nodes[2])
            for id_ in _ids_on(cluster, node, 3, "d")
        ]
        expected = [Person(id=id_, name=id_) for id_ in live]
        async with Session(
            memory=cluster.url, fallback=DictFallback(), breaker=BREAKER, memory_timeout=2.0
        ) as session:
            people = Person.objects.using(session)
            await people.add(*expected)
            victim.kill()

            def down() -> bool:
                with cluster.nodes[0].client() as client:
                    return bool(client.cluster("INFO")["cluster_state"] == "fail")

            await _until(down, "cluster_state:fail", 20)
            for _ in range(BREAKER["fail_max"]):
                assert await people.get_many(live) == expected
            assert session.stats()["breakers"]["memory"] == "open"
            nodes = session.stats()["breakers"].get("nodes", {})
            assert all(nodes.get(n.address, "closed") == "closed" for n in cluster.live())
            hits, reads = _stats(session)
            assert await people.get_many(live) == expected
            assert _stats(session) == (hits, reads + len(live))
