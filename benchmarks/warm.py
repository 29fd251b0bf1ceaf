"""``dbdaora warm`` throughput: records a second from PostgreSQL into Redis.

Against a hand-written loader of the same records in the same run: keyset pages
of rows read with SQLAlchemy Core from the same table, each page sent to Redis as
one redis-py pipeline of HSET + EXPIRE per record. Both start from an empty Redis
each round. ``warm`` reads the names a page at a time and the records through the
model's read-through (lease, fallback read, fill under the lease), which is what
makes it safe beside live writers; the ratio is the price of that.

Private servers (redis-server and PostgreSQL on free loopback ports) unless given:

    .venv/bin/python -m benchmarks.warm [--records 20000] [--rounds 3]
        [--postgres postgresql+asyncpg://...] [--redis redis://...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator

import redis.asyncio
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from dbdaora import Field, Key, Model, Session
from dbdaora.backends.fallback.sql.store import SQLFallback
from dbdaora.cli.warm import PAGE, warm

TTL = 3600


class Subscriber(Model):
    id: int = Key()
    name: str = Field()
    email: str = Field()
    plan: str = Field(default="free")

    class Meta:
        expire_time = TTL


async def seed(url: str, count: int) -> None:
    store = SQLFallback(url)
    try:
        for start in range(0, count, 5000):
            people = [
                Subscriber(id=i, name=f"name {i}", email=f"s{i}@example.com", plan="pro")
                for i in range(start, min(start + 5000, count))
            ]
            await store.put_many(Subscriber._meta, [str(p.id) for p in people], people)
    finally:
        await store.close()


async def by_warm(postgres: str, redis_url: str) -> int:
    async with Session(memory=redis_url, fallback=postgres, cache=None, breaker=None) as session:
        done = await warm(Subscriber._meta, session, page=PAGE, advance=lambda n: None)
    return done.filled


async def by_hand(postgres: str, redis_url: str) -> int:
    engine = create_async_engine(postgres)
    client = redis.asyncio.Redis.from_url(redis_url)
    table = sa.table("subscriber", sa.column("id"), sa.column("name"), sa.column("email"))
    columns = [*table.c, sa.column("plan")]
    written, after = 0, -1
    try:
        while True:
            query = sa.select(*columns).where(table.c.id > after).order_by(table.c.id).limit(PAGE)
            async with engine.connect() as connection:
                rows = (await connection.execute(query)).all()
            if not rows:
                return written
            pipeline = client.pipeline(transaction=False)
            for row in rows:
                key = f"subscriber:{row.id}"
                fields = {"id": str(row.id), "name": row.name, "email": row.email, "plan": row.plan}
                pipeline.hset(key, mapping=fields)
                pipeline.expire(key, TTL)
            await pipeline.execute()
            written += len(rows)
            after = rows[-1].id
    finally:
        await client.aclose()
        await engine.dispose()


async def measure(postgres: str, redis_url: str, count: int, rounds: int) -> tuple[float, float]:
    await seed(postgres, count)
    flusher = redis.asyncio.Redis.from_url(redis_url)
    rates: dict[str, list[float]] = {"warm": [], "hand": []}
    try:
        for _ in range(rounds):
            for name, load in (("warm", by_warm), ("hand", by_hand)):
                await flusher.flushdb()
                started = time.perf_counter()
                assert await load(postgres, redis_url) == count
                rates[name].append(count / (time.perf_counter() - started))
                assert await flusher.dbsize() >= count
    finally:
        await flusher.aclose()
    return statistics.median(rates["warm"]), statistics.median(rates["hand"])


@contextlib.contextmanager
def servers(postgres: str | None, redis_url: str | None) -> Iterator[tuple[str, str]]:
    """The URLs given, or private servers started for this run."""
    from tests.support.servers import postgres_server, redis_server

    with contextlib.ExitStack() as stack:
        if postgres is None:
            server = stack.enter_context(postgres_server())
            server.admin("CREATE DATABASE bench_warm")
            postgres = server.url_of("bench_warm")
        if redis_url is None:
            redis_url = stack.enter_context(redis_server()).url
        yield postgres, redis_url


def main(
    count: int = 20_000, rounds: int = 3, postgres: str | None = None, redis_url: str | None = None
) -> dict[str, float]:
    with servers(postgres, redis_url) as (pg, rd):
        warm_rate, hand_rate = asyncio.run(measure(pg, rd, count, rounds))
    print(f"warm of {count:,} records, PostgreSQL -> Redis (median of {rounds} rounds)")
    print(f"dbdaora warm:          {warm_rate:10,.0f} records/s")
    print(f"hand-written pipeline: {hand_rate:10,.0f} records/s")
    print(f"warm / hand:           {warm_rate / hand_rate:10.2f}")
    return {"warm": warm_rate, "hand": hand_rate}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="postgresql+asyncpg:// URL of an empty database")
    parser.add_argument("--redis", help="redis:// URL of a Redis it may flush")
    args = parser.parse_args()
    main(args.records, args.rounds, args.postgres, args.redis)
