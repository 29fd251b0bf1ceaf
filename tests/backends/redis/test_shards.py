"""Redis sharded by the client (``redis+shards://``, 0.27's ``make_aioredis_data_source(*uris)``)
on private redis-servers: the URL, where keys live, a shard's restart, another process's
writes reaching a tracked cache. The Redis-side and model contracts run on the shards too
(``shards`` in tests/support/stacks.py and tests/contract/conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdaora import ConfigurationError, Session
from dbdaora.backends import open_redis_side
from dbdaora.backends.redis.protocol import EPOCH_KEY
from dbdaora.backends.redis.shards import ShardedStore
from dbdaora.backends.redis.wire.shards import shard_urls
from tests.support.models import Person
from tests.support.reader import read_in_another_process, until_new
from tests.support.shards import SHARDS, ShardedClient, ShardedServers, ring_index, sharded_servers
from tests.support.tracking_writer import follow_a_writer

CACHE = {"ttl": None, "max_size": 1000, "tracking": True}


def test_a_shards_url_opens_a_sharded_store_with_each_shards_url() -> None:
    """redis+shards:// lists the servers in ring order; each takes the URL's credentials,
    database and options; passwords are masked."""
    url = "redis+shards://:s3cret@127.0.0.1:7000,127.0.0.1:7001/2?socket_timeout=3"
    store = open_redis_side(url)
    assert isinstance(store, ShardedStore)
    assert shard_urls(url) == [
        "redis://:s3cret@127.0.0.1:7000/2?socket_timeout=3",
        "redis://:s3cret@127.0.0.1:7001/2?socket_timeout=3",
    ]
    assert "s3cret" not in store.url and "redis://:***@127.0.0.1:7001/2" in store.url
    assert shard_urls("rediss+shards://h:1")[0].startswith("rediss://h:1")


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("redis+shards://127.0.0.1", "'127.0.0.1' is not host:port"),
        ("redis+shards://:pw@h:1,h:x", "'h:x' is not host:port"),
        ("redis+shards://:pw@h:1/zero", "the database (the path) must be a number"),
        ("redis+shards://:pw@h:1?socket_timeout=soon", "Invalid value for 'socket_timeout'"),
    ],
)
def test_a_bad_shards_url_is_a_configuration_error(url: str, complaint: str) -> None:
    """A malformed redis+shards:// URL fails when the store is made, naming what is wrong,
    its password masked."""
    with pytest.raises(ConfigurationError) as error:
        open_redis_side(url)
    assert complaint in str(error.value)
    assert ":pw@" not in str(error.value)


def test_no_shard_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="at least one server"):
        ShardedStore([])


async def test_each_key_and_its_marker_live_where_027_put_them(
    shards_proc: ShardedServers, raw_shards: ShardedClient
) -> None:
    """Entities, their markers (an id found nowhere) and non-ASCII ids: each key on the
    server 0.27's hash ring names, and on no other."""
    ids = [f"p{i}" for i in range(20)] + ["é", "名前"]
    async with Session(memory=shards_proc.url, fallback="memory://", cache=None) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name=i) for i in ids))
        assert [p.name for p in await people.get_many(ids)] == ids
        assert await people.get_many(["ghost"]) == []
    keys = [f"person:{i}".encode() for i in ids] + [b"person:not-found:ghost"]
    for key in keys:
        holders = [n for n, client in enumerate(raw_shards.clients) if client.exists(key)]
        assert holders == [ring_index(key, SHARDS)], key
    assert {ring_index(key, SHARDS) for key in keys} == set(range(SHARDS))


@pytest.fixture
def two_shards() -> Iterator[ShardedServers]:
    """Two private shards whose directories (and RDB files) outlive their restarts."""
    with sharded_servers(2) as servers:
        yield servers


async def test_a_shard_restarted_from_an_older_rdb_serves_no_older_copy(
    two_shards: ShardedServers, tmp_path: Path
) -> None:
    """The shard of person:a killed and started from an older RDB: this session and
    another process read the acknowledged value, never the restored one."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    writer = Session(
        memory=two_shards.url, fallback=fallback, repair_interval=1.0, expire_time=3600
    )
    people = Person.objects.using(writer)
    await writer.create_all()
    await people.add(Person(id="a", name="old"))
    assert (await people.get("a")).name == "old"
    shard = two_shards.servers[ring_index(b"person:a", 2)]
    client = shard.client()
    client.save()  # the RDB holds "old", with an hour of TTL
    client.close()
    await people.add(Person(id="a", name="new"))
    shard.kill()
    shard.start()
    restarted = time.monotonic()
    client = shard.client()
    assert client.hget(b"person:a", "name") in (b"old", None)  # the lost write
    client.close()

    await until_new(people, restarted, 2.0)
    assert await read_in_another_process(two_shards.url, fallback) == "new"
    assert (await people.get("a")).name == "new"
    await writer.close()


async def test_another_process_writes_on_the_shards_and_this_cache_follows(
    shards_proc: ShardedServers, raw_shards: ShardedClient, tmp_path: Path
) -> None:
    """A second OS process adds Person("a") 10 times; this process's cached reads follow
    (each shard tracks the reads its connection sent), and never go back."""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    async with Session(
        memory=shards_proc.url, fallback=fallback, expire_time=3600, cache=CACHE
    ) as session:
        await session.create_all()
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="v0"))
        await people.get("a")
        assert session.stats()["cache"]["tracking"] is True
        seen, written = await follow_a_writer(people, shards_proc.url, fallback, 10, 0.05)
        hits = session.stats()["cache"]["hits"]
    assert len(written) == 10
    versions = [version for _, version in seen]
    assert versions == sorted(versions), "an older version was read after a newer one"
    for version, at in written:
        late = [v for t, v in seen if t > at + 0.05 and v < version]
        assert late == [], f"v{version} not read 50 ms after its write returned"
    assert hits > 0


async def test_an_outside_write_on_each_shard_invalidates(
    shards_proc: ShardedServers, raw_shards: ShardedClient
) -> None:
    """A cached entity on each shard; an HSET by a plain client reaches the cache."""
    ids: dict[int, str] = {}
    for i in range(100):
        ids.setdefault(ring_index(f"person:{i}", SHARDS), str(i))
    async with Session(memory=shards_proc.url, fallback="memory://", cache=CACHE) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=i, name="old") for i in ids.values()))
        for i in ids.values():
            await people.get(i)
        for i in ids.values():
            raw_shards.hset(f"person:{i}".encode(), "name", "new")
            started = time.monotonic()
            while (await people.get(i)).name != "new":
                assert time.monotonic() - started < 2.0, f"person:{i} stayed stale"
                await asyncio.sleep(0.001)


def _on_shard(index: int, count: int) -> str:
    """An id whose key and marker both live on shard ``index``."""
    return next(
        str(i)
        for i in range(1000)
        if ring_index(f"person:{i}", count) == ring_index(f"person:not-found:{i}", count) == index
    )


async def test_with_one_shard_down_only_its_keys_go_to_the_fallback(
    two_shards: ShardedServers, tmp_path: Path
) -> None:
    """One of two shards killed: its breaker opens and its keys are answered from the
    fallback, written there meanwhile, while the other shard keeps serving its own; once
    it is back, the writes it missed read as written, and Redis serves them again.

    The shard killed is the one ``dbdaora:epoch`` is routed to: a session started
    meanwhile checks for restarts from the other shard's copy. (A key whose marker lives
    on the dead shard is not filled meanwhile, docs/redis.md: the ids here are not.)"""
    fallback = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    epoch = ring_index(EPOCH_KEY, 2)
    dead, live = _on_shard(epoch, 2), _on_shard(1 - epoch, 2)
    async with Session(
        memory=two_shards.url,
        fallback=fallback,
        repair_interval=0.5,
        expire_time=3600,
        cache=None,
    ) as session:
        people = Person.objects.using(session)
        stats = session.stats_for(Person._meta)
        await session.create_all()
        await people.add(Person(id=dead, name="old"), Person(id=live, name="old"))
        assert [p.name for p in await people.get_many([dead, live])] == ["old", "old"]
        down = two_shards.servers[epoch]
        name = session.memory.node_of(f"person:{dead}".encode())  # type: ignore[attr-defined]
        down.kill()
        await people.add(Person(id=dead, name="new"))  # acknowledged: the fallback has it
        for _ in range(10):
            assert (await people.get(dead)).name == "new"
        assert session.stats()["breakers"]["nodes"][name] == "open"
        hits, reads = stats.redis_hits, stats.fallback_reads
        for _ in range(10):
            assert (await people.get(live)).name == "old"
            assert (await people.get(dead)).name == "new"
        assert (stats.redis_hits - hits, stats.fallback_reads - reads) == (10, 10)
        assert session.stats()["breakers"]["memory"] == "closed"
        async with Session(memory=two_shards.url, fallback=fallback, cache=None) as fresh:
            # A session started now checks for restarts first: from the live shard's copy.
            assert (await Person.objects.using(fresh).get(live)).name == "old"
            assert fresh.stats_for(Person._meta).redis_hits == 1
        down.start()
        hits = stats.redis_hits
        started = time.monotonic()
        while time.monotonic() - started < 2.0:  # the breaker's probe, then the repair
            assert (await people.get(dead)).name == "new"
            await asyncio.sleep(0.02)
        assert stats.redis_hits - hits > 50  # the dead shard serves again
        assert session.stats()["breakers"]["nodes"][name] == "closed"


async def test_a_hung_shard_holds_back_only_its_own_keys(two_shards: ShardedServers) -> None:
    """One of two shards hung (SIGSTOP): once its breaker is open, reads of the other
    shard's keys are answered by Redis with no wait, and its own by the fallback."""
    ids = {ring_index(f"person:{i}", 2): str(i) for i in range(20)}
    async with Session(
        memory=two_shards.url, fallback="memory://", memory_timeout=0.2, cache=None
    ) as session:
        people = Person.objects.using(session)
        stats = session.stats_for(Person._meta)
        await people.add(*(Person(id=i, name="v") for i in ids.values()))
        name = session.memory.node_of(f"person:{ids[0]}".encode())  # type: ignore[attr-defined]
        two_shards.servers[0].pause()
        try:
            started = time.monotonic()
            while session.stats()["breakers"].get("nodes", {}).get(name) != "open":
                assert time.monotonic() - started < 10, "the hung shard's breaker never opened"
                assert (await people.get(ids[0])).name == "v"
            hits = stats.redis_hits
            started = time.monotonic()
            for _ in range(20):
                assert (await people.get(ids[1])).name == "v"
                assert (await people.get(ids[0])).name == "v"
            took = time.monotonic() - started
            assert stats.redis_hits - hits == 20
            assert took < 1.0, f"40 reads took {took:.2f} s: the hung shard held them back"
        finally:
            two_shards.servers[0].resume()
