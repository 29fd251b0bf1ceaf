"""A cluster master killed with SIGKILL and started again from an older RDB, on a
cluster of this test's own: the keys it serves come back older than acknowledged
writes; no session, in this process or another, serves them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdaora import Session
from tests.support.cluster_server import ClusterServer, NodeServer, redis_cluster
from tests.support.models import Person
from tests.support.reader import read_in_another_process, until_new

INTERVAL = 1.0
SLACK = 1.0

# redis-py's asyncio cluster client drops, without closing, its connections to a
# master that died; the collection at the test's end reports them (see
# test_cluster_faults).
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def cluster() -> Iterator[ClusterServer]:
    """A cluster of this test alone: it restarts one of the masters."""
    with redis_cluster() as cluster:
        yield cluster
    gc.collect()


def _serving(node: NodeServer) -> bool:
    with node.client() as client:
        return bool(client.cluster("INFO")["cluster_state"] == "ok")


async def test_a_master_restarted_from_an_older_rdb_serves_no_older_copy(
    cluster: ClusterServer, tmp_path: Path
) -> None:
    """The master of person:a restarts from an RDB holding "old": everyone reads "new"."""
    fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    writer = Session(
        memory=cluster.url, fallback=fallback_url, repair_interval=INTERVAL, expire_time=3600
    )
    people = Person.objects.using(writer)
    await writer.create_all()
    await people.add(Person(id="a", name="old"))
    master = cluster.node_of(b"person:a")
    with master.client() as client:
        client.save()  # the RDB holds "old", with an hour of TTL
    await people.add(Person(id="a", name="new"))  # acknowledged: in Redis and the fallback
    master.kill()
    master.start()  # the same port, directory and nodes.conf: the same node, older data
    deadline = time.monotonic() + 20
    while not _serving(master):
        assert time.monotonic() < deadline, "the restarted master never rejoined"
        await asyncio.sleep(0.05)
    restarted = time.monotonic()  # serving its slots again
    with master.client() as client:
        assert client.hget(b"person:a", "name") == b"old"  # the lost write

    seen_new_at = await until_new(people, restarted, INTERVAL + SLACK)
    print(f"new read {seen_new_at}s after the master served again")
    assert await read_in_another_process(cluster.url, fallback_url) == "new"
    with master.client() as client:
        assert client.hget(b"person:a", "name") != b"old"
    await writer.close()
