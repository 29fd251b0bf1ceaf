"""Repair across processes, on real servers: a writer that wrote while Redis was frozen
and died before it came back leaves a stale Redis copy that every session deletes
within ``repair_interval`` of Redis answering again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest
import redis

from dbdaora import Session
from tests.support.models import Person
from tests.support.reader import until_new
from tests.support.servers import RedisServer

INTERVAL = 1.0
SLACK = 0.5
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(params=["sqlite", "postgres"])
def fallback_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file or the private PostgreSQL, shared by the test and the writer process."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def test_a_dead_writers_stale_copy_is_gone_within_the_repair_interval(
    redis_proc: RedisServer, raw_redis: redis.Redis, fallback_url: str
) -> None:
    """After SIGCONT, a session that never saw the write reads it within repair_interval."""
    reader = Session(memory=redis_proc.url, fallback=fallback_url, repair_interval=INTERVAL)
    people = Person.objects.using(reader)
    await reader.create_all()
    await people.add(Person(id="a", name="old"))
    assert (await people.get("a")).name == "old"  # served by Redis from now on
    redis_proc.pause()
    try:
        writer = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tests.support.repair_writer", redis_proc.url, fallback_url),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(writer.communicate(), 30)
    finally:
        redis_proc.resume()
    resumed = time.monotonic()
    assert out.decode().strip() == "acknowledged", err.decode()
    assert writer.returncode == -9  # killed before Redis answered again
    assert raw_redis.hget(b"person:a", "name") == b"old"  # the stale copy is there
    await until_new(people, resumed, INTERVAL + SLACK, watch=1.0)
    assert await reader.fallback.repairs(10) == []
    await reader.close()
