"""Restarts that lost writes, on a real redis-server: killed with SIGKILL and started
again on the same port from an older RDB snapshot or an AOF that lost its last
second, it holds copies older than acknowledged writes; no session, in this
process or another, serves them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdaora import Session
from tests.support.models import Person
from tests.support.reader import read_in_another_process, until_new
from tests.support.servers import RedisServer, redis_server

INTERVAL = 1.0
SLACK = 1.0


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A private redis-server whose directory (and RDB file) outlives its restarts."""
    with redis_server() as server:
        yield server


async def test_a_restart_from_an_older_rdb_serves_no_older_copy(
    server: RedisServer, tmp_path: Path
) -> None:
    """Restarted from an older RDB after kill -9: the writer and a new process read new."""
    fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    writer = Session(
        memory=server.url, fallback=fallback_url, repair_interval=INTERVAL, expire_time=3600
    )
    people = Person.objects.using(writer)
    await writer.create_all()
    await people.add(Person(id="a", name="old"))
    assert (await people.get("a")).name == "old"
    client = server.client()
    client.save()  # the RDB holds "old", with an hour of TTL
    await people.add(Person(id="a", name="new"))  # acknowledged: in Redis and the fallback
    assert client.hget(b"person:a", "name") == b"new"
    client.close()
    server.kill()
    server.start()  # the same port and directory: it loads the older RDB
    restarted = time.monotonic()
    client = server.client()
    assert client.hget(b"person:a", "name") in (b"old", None)  # the lost write
    client.close()

    await until_new(people, restarted, INTERVAL + SLACK)
    assert await read_in_another_process(server.url, fallback_url) == "new"
    assert (await people.get("a")).name == "new"
    await writer.close()


async def test_a_fresh_process_after_the_restart_never_reads_the_older_copy(
    server: RedisServer, tmp_path: Path
) -> None:
    """A process started after the restart, before any other session looked, reads new."""
    fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with Session(memory=server.url, fallback=fallback_url, expire_time=3600) as writer:
        people = Person.objects.using(writer)
        await writer.create_all()
        await people.add(Person(id="a", name="old"))
        client = server.client()
        client.save()
        await people.add(Person(id="a", name="new"))
        client.close()
        server.kill()
        server.start()
        client = server.client()
        assert client.hget(b"person:a", "name") == b"old"  # the older copy is back
        client.close()
        assert await read_in_another_process(server.url, fallback_url) == "new"
        assert server.client().hget(b"person:a", "name") != b"old"


def _wait_appended(aof: Path, value: bytes) -> None:
    """Wait until Redis has written ``value`` to a file of its AOF directory."""
    deadline = time.monotonic() + 5
    while not any(value in part.read_bytes() for part in aof.iterdir()):
        assert time.monotonic() < deadline, "the AOF never got the write"
        time.sleep(0.01)


async def test_an_aof_that_lost_its_last_second_serves_no_older_copy(tmp_path: Path) -> None:
    """appendfsync everysec, restarted from an AOF without its last writes: no older copy read."""
    with redis_server(["--appendonly", "yes", "--appendfsync", "everysec"]) as server:
        fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
        writer = Session(
            memory=server.url, fallback=fallback_url, repair_interval=INTERVAL, expire_time=3600
        )
        people = Person.objects.using(writer)
        await writer.create_all()
        await people.add(Person(id="a", name="old"))
        aof = Path(server.directory) / "appendonlydir"
        _wait_appended(aof, b"old")
        # The AOF as a machine crash leaves it with everysec: without the last second.
        shutil.copytree(aof, tmp_path / "aof")
        await people.add(Person(id="a", name="new"))  # acknowledged: in Redis and the fallback
        server.kill()
        shutil.rmtree(aof)
        shutil.copytree(tmp_path / "aof", aof)
        server.start()
        restarted = time.monotonic()
        client = server.client()
        assert client.hget(b"person:a", "name") == b"old"  # the lost write
        client.close()
        await until_new(people, restarted, INTERVAL + SLACK)
        assert await read_in_another_process(server.url, fallback_url) == "new"
        await writer.close()


async def test_an_rdb_older_than_any_epoch_serves_no_older_copy(
    server: RedisServer, tmp_path: Path
) -> None:
    """An RDB from before any session recorded an epoch: its keys are swept, not adopted."""
    fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    client = server.client()
    # A copy written before any dbdaora session looked (dbdaora 0.27, say), saved.
    client.hset(b"person:a", mapping={b"id": b"a", b"name": b"old"})
    client.expire(b"person:a", 3600)
    client.save()
    async with Session(memory=server.url, fallback=fallback_url, expire_time=3600) as writer:
        people = Person.objects.using(writer)
        await writer.create_all()
        await people.add(Person(id="a", name="new"))  # records the epoch, adopting the prefix
        assert client.hexists(b"dbdaora:epoch", b"person:")
    client.close()
    server.kill()
    server.start()
    client = server.client()
    assert client.hget(b"person:a", "name") == b"old" and not client.exists(b"dbdaora:epoch")
    client.close()
    assert await read_in_another_process(server.url, fallback_url) == "new"


async def test_a_promoted_replica_sweeps_prefixes_with_no_epoch(tmp_path: Path) -> None:
    """A replica promoted before any epoch was recorded: its replicated copies are swept."""
    fallback_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    with redis_server() as master:
        replica_of = ["--replicaof", "127.0.0.1", str(master.port)]
        with redis_server(replica_of) as replica:
            client = master.client()
            # A copy written before any dbdaora session looked (dbdaora 0.27, say).
            client.hset(b"person:a", mapping={b"id": b"a", b"name": b"old"})
            client.close()
            promoted = replica.client()
            deadline = time.monotonic() + 10
            while promoted.hget(b"person:a", "name") != b"old":
                assert time.monotonic() < deadline, "the replica never got the copy"
                await asyncio.sleep(0.01)
            promoted.execute_command("REPLICAOF", "NO", "ONE")
            async with Session(memory=replica.url, fallback=fallback_url) as session:
                await session.create_all()
                await session.fallback.put_many(
                    Person._meta, ["a"], [Person(id="a", name="new")]
                )  # the fallback moved on; the replica's copy is older
                assert (await session.memory.epochs()).restored
                assert (await Person.objects.using(session).get("a")).name == "new"
            assert promoted.hget(b"person:a", "name") != b"old"
            promoted.close()
