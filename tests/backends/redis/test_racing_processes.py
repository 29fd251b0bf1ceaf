"""Racing writers in separate processes, on real servers: two processes write the same
keys at the same moment, round after round, and once both calls of a pair returned,
Redis never holds one writer's value while the fallback holds the other's.

Each round both writers (``tests/support/race_worker.py``) send a write of every
key at once; in even rounds both add (different values), in odd rounds one adds
while the other deletes (a hash) or removes the member (a sorted set). A barrier
holds them between rounds while the test reads Redis raw and the fallback.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
import redis

from dbdaora import Session
from tests.support import race_worker
from tests.support.models import Person, Ranking
from tests.support.race_worker import KEYS, ROUNDS, disagreements, names
from tests.support.servers import RedisServer


@pytest.fixture(params=["sqlite", "postgres"])
def fallback_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite file or the private PostgreSQL, shared by the test and the writers."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def _compare(kind: str, session: Session, raw: redis.Redis) -> list[str]:
    meta = Person._meta if kind == "hash" else Ranking._meta
    keys = [(meta.redis_key(name), meta.marker_key(name)) for name in names()]
    if kind == "hash":
        copies: list[Any] = [raw.hgetall(key) for key, _ in keys]
        records = await session.fallback.get_many(meta, names())
    else:
        copies = [raw.zrange(key, 0, -1, withscores=True) for key, _ in keys]
        records = [await session.fallback.get_members(meta, name) for name in names()]
    markers = [raw.get(marker) for _, marker in keys]
    return disagreements(kind, list(zip(copies, markers, strict=True)), records)


@pytest.mark.parametrize("kind", ["hash", "zset"])
async def test_racing_writers_leave_redis_agreeing_with_the_fallback(
    redis_proc: RedisServer, raw_redis: redis.Redis, fallback_url: str, kind: str
) -> None:
    """After each round of colliding writes, Redis holds the fallback's value or no copy."""
    session = Session(memory=redis_proc.url, fallback=fallback_url, cache=None)
    await session.create_all()
    meta = Person._meta if kind == "hash" else Ranking._meta
    for name in names():
        raw_redis.delete(meta.redis_key(name), meta.marker_key(name))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(3, timeout=60)
    writers = [
        spawn.Process(target=race_worker.run, args=(i, redis_proc.url, fallback_url, kind, barrier))
        for i in (0, 1)
    ]
    for writer in writers:
        writer.start()
    differed: list[str] = []
    try:
        for round_ in range(ROUNDS):
            await asyncio.to_thread(barrier.wait)  # the round starts
            await asyncio.to_thread(barrier.wait)  # every write of it returned
            differed += [
                f"round {round_}: {line}" for line in await _compare(kind, session, raw_redis)
            ]
    finally:
        for writer in writers:
            writer.join(30)
            if writer.is_alive():
                writer.kill()
        await session.close()
    assert [writer.exitcode for writer in writers] == [0, 0]
    assert not differed, f"{len(differed)} of {KEYS * ROUNDS} pairs differed: {differed[:5]}"
