"""The tracked session cache on Redis Sentinel (``redis+sentinel://``), issue 16 part B.

The Sentinel link hands out the master's multiplexed connection as the single-node
link does, so the cache is tracked there too; a failover replaces the connection,
which flushes the cache: the new master never heard of the keys read before.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from dbdaora import Session
from tests.support.models import Person
from tests.support.sentinel_server import MASTER_NAME, SentinelServer

ROOT = Path(__file__).resolve().parents[3]
# The Sentinel tests' bound on reaching a promoted master (test_sentinel.REACH_BOUND).
REACH_BOUND = 3.0


async def _until_name(people: object, name: str, bound: float) -> float:
    """Seconds until ``Person("a")`` reads ``name``, polling; fails past ``bound``."""
    started = time.monotonic()
    while (await people.get("a")).name != name:  # type: ignore[attr-defined] # a manager
        assert time.monotonic() - started <= bound, f"{name!r} not read within {bound}s"
        await asyncio.sleep(0.0005)
    return time.monotonic() - started


async def test_an_outside_write_on_the_master_invalidates(sentinel: SentinelServer) -> None:
    """A cache on redis+sentinel:// is tracked; an HSET on the master reaches it."""
    cache = {"ttl": None, "max_size": 100, "tracking": True}
    async with Session(memory=sentinel.url(), fallback="memory://", cache=cache) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="old"))
        await people.get("a")
        assert (await people.get("a")).name == "old"
        assert session.stats()["cache"]["hits"] == 1
        with sentinel.master().client() as client:
            client.hset(b"person:a", "name", "new")
        delay = await _until_name(people, "new", 0.5)
        print(f"Sentinel master write read after {delay * 1e3:.2f} ms")


async def test_a_failover_flushes_and_a_write_on_the_new_master_is_read(
    sentinel: SentinelServer, tmp_path: Path
) -> None:
    """SENTINEL FAILOVER: the session follows the promoted replica, its cache flushed
    when the connection moved; another process's write there is then read."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    cache = {"ttl": None, "max_size": 100, "tracking": True}
    async with Session(
        memory=sentinel.url(), fallback=fallback, expire_time=3600, cache=cache
    ) as session:
        people = Person.objects.using(session)
        await session.create_all()
        await people.add(Person(id="a", name="v0"))
        await people.get("a")
        old = sentinel.master()
        with old.client() as client:
            client.wait(1, 2000)
        flushes = session.stats()["cache"]["flushes"]
        with sentinel.sentinels[0].client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        await asyncio.to_thread(sentinel.wait_promoted, old.port)
        writer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.support.tracking_writer"),
            *(sentinel.url(), fallback, "1", "0"),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(writer.communicate(), 30)
        assert writer.returncode == 0, err.decode()
        await _until_name(people, "v1", REACH_BOUND)
        assert session.stats()["cache"]["flushes"] > flushes
