"""Racing writers in separate processes, on real servers: two processes write the same
keys at the same moment, round after round, and once both calls of a pair returned,
Redis never holds one writer's value while the fallback holds the other's.

Each round both writers (``tests/support/race_worker.py``) send a write of every
key at once; in even rounds both add (different values, but for a flag), in odd
rounds one adds while the other deletes (a hash, a flag) or removes the member (a
sorted set). A barrier
holds them between rounds while the test reads Redis raw and the fallback.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from dbdaora import Session
from tests.support import race_worker
from tests.support.models import Liked, Person, Ranking
from tests.support.race_worker import Plan, disagreements, names

CASES = {
    # SQLite serialises the two writers' commits on its file lock: fewer keys and lanes.
    "sqlite-hash": ("redis", "sqlite", Plan("hash", keys=30, rounds=5, lanes=2)),
    "sqlite-zset": ("redis", "sqlite", Plan("zset", keys=20, rounds=5, lanes=2)),
    "postgres-hash": ("redis", "postgres", Plan("hash", keys=100, rounds=6, lanes=8)),
    "postgres-zset": ("redis", "postgres", Plan("zset", keys=50, rounds=6, lanes=8)),
    "cluster-postgres-hash": ("cluster", "postgres", Plan("hash", keys=50, rounds=4, lanes=8)),
    "postgres-flag": ("redis", "postgres", Plan("flag", keys=100, rounds=6, lanes=8)),
    "cluster-postgres-flag": ("cluster", "postgres", Plan("flag", keys=50, rounds=4, lanes=8)),
    # 0.27's client-side shards: a key and its marker on two servers, as on the cluster.
    "shards-postgres-hash": ("shards", "postgres", Plan("hash", keys=50, rounds=4, lanes=8)),
    "shards-postgres-zset": ("shards", "postgres", Plan("zset", keys=30, rounds=4, lanes=8)),
    "shards-postgres-flag": ("shards", "postgres", Plan("flag", keys=50, rounds=4, lanes=8)),
}


def _meta(plan: Plan) -> Any:
    return {"hash": Person, "zset": Ranking, "flag": Liked}[plan.kind]._meta


async def _compare(plan: Plan, session: Session, raw: Any) -> list[str]:
    meta = _meta(plan)
    keys = [(meta.redis_key(name), meta.marker_key(name)) for name in names(plan)]
    if plan.kind == "flag":
        copies: list[Any] = [raw.get(key) for key, _ in keys]
        records = await session.fallback.get_many(meta, names(plan))
    elif plan.kind == "hash":
        copies = [raw.hgetall(key) for key, _ in keys]
        records = await session.fallback.get_many(meta, names(plan))
    else:
        copies = [raw.zrange(key, 0, -1, withscores=True) for key, _ in keys]
        records = [await session.fallback.get_members(meta, name) for name in names(plan)]
    markers = [raw.get(marker) for _, marker in keys]
    return disagreements(plan, list(zip(copies, markers, strict=True)), records)


@pytest.mark.parametrize("case", list(CASES))
async def test_racing_writers_leave_redis_agreeing_with_the_fallback(
    request: pytest.FixtureRequest, tmp_path: Path, case: str
) -> None:
    """After each round of colliding writes, Redis holds the fallback's value or no copy."""
    side, durable, plan = CASES[case]
    if side == "redis":
        memory = request.getfixturevalue("redis_proc").url
        raw = request.getfixturevalue("raw_redis")
    else:
        memory = request.getfixturevalue(f"{side}_proc").url
        raw = request.getfixturevalue(f"raw_{side}")
    if durable == "sqlite":
        fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    else:
        fallback = request.getfixturevalue("postgres_url")
    session = Session(memory=memory, fallback=fallback, cache=None)
    meta = _meta(plan)
    # Only this model's table: other test modules declare other models named Person.
    await session.fallback.create_all([meta])
    for name in names(plan):
        raw.delete(meta.redis_key(name))
        raw.delete(meta.marker_key(name))
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(3, timeout=60)
    writers = [
        spawn.Process(target=race_worker.run, args=(i, memory, fallback, tuple(plan), barrier))
        for i in (0, 1)
    ]
    for writer in writers:
        writer.start()
    differed: list[str] = []
    try:
        for round_ in range(plan.rounds):
            await asyncio.to_thread(barrier.wait)  # the round starts
            await asyncio.to_thread(barrier.wait)  # every write of it returned
            found = await _compare(plan, session, raw)
            differed += [f"round {round_}: {line}" for line in found]
    finally:
        for writer in writers:
            writer.join(30)
            if writer.is_alive():
                writer.kill()
        await session.close()
    assert [writer.exitcode for writer in writers] == [0, 0]
    pairs = plan.keys * plan.rounds
    assert not differed, f"{len(differed)} of {pairs} pairs differed: {differed[:5]}"
