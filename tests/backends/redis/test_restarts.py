"""Restarts that lost writes, on a real redis-server: killed with SIGKILL and started
again on the same port from an older RDB snapshot, it holds copies older than
acknowledged writes; no session, in this process or another, serves them.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdaora import Session
from tests.support.models import Person
from tests.support.servers import RedisServer, redis_server

INTERVAL = 1.0
SLACK = 1.0
ROOT = Path(__file__).resolve().parents[3]
READER = """
import asyncio, sys
from dbdaora import Session
from tests.support.models import Person

async def main() -> None:
    async with Session(memory=sys.argv[1], fallback=sys.argv[2], expire_time=3600) as s:
        print((await Person.objects.using(s).get("a")).name, flush=True)

asyncio.run(main())
"""


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A private redis-server whose directory (and RDB file) outlives its restarts."""
    with redis_server() as server:
        yield server


async def _read_in_another_process(redis_url: str, fallback_url: str) -> str:
    reader = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", READER, redis_url, fallback_url),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(reader.communicate(), 30)
    assert reader.returncode == 0, err.decode()
    return out.decode().strip()


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

    seen_new_at = None
    while time.monotonic() - restarted < INTERVAL + SLACK + 0.5:
        name = (await people.get("a")).name
        if name == "new" and seen_new_at is None:
            seen_new_at = time.monotonic() - restarted
        assert name == "new" or seen_new_at is None, "an older copy served after the new one"
        await asyncio.sleep(0.01)
    print(f"new read {seen_new_at}s after the restart")
    assert seen_new_at is not None and seen_new_at <= INTERVAL + SLACK
    assert await _read_in_another_process(server.url, fallback_url) == "new"
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
        assert await _read_in_another_process(server.url, fallback_url) == "new"
        assert server.client().hget(b"person:a", "name") != b"old"
