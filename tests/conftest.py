"""Fixtures: a private redis-server for the session, and a store per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.cluster import RedisCluster

from dbdaora import Session, settings
from dbdaora.backends import DictFallback, InProcessRedis
from tests.support.cluster_server import ClusterServer, redis_cluster
from tests.support.datastore_server import EMULATOR, DatastoreEmulator, datastore_emulator
from tests.support.raw import RawView
from tests.support.sentinel_server import SentinelServer, redis_sentinel
from tests.support.servers import PostgresServer, RedisServer, postgres_server, redis_server
from tests.support.shards import ShardedClient, ShardedServers, sharded_servers
from tests.support.stacks import REDIS_SIDES, STACKS


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[RedisServer]:
    """A redis-server on a free loopback port, for this test run only."""
    with redis_server() as server:
        yield server


@pytest.fixture
def raw_redis(redis_proc: RedisServer) -> Iterator[redis.Redis]:
    """A plain redis-py client on the private server, emptied after each test."""
    client = redis_proc.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def memory_store() -> tuple[Any, RawView]:
    """memory:// on the Redis side, with a view of what it holds."""
    store = InProcessRedis()
    return store, RawView(store, None)


@pytest.fixture
def redis_store(redis_proc: RedisServer, raw_redis: redis.Redis) -> tuple[Any, RawView]:
    """redis:// on the private server, with a plain redis-py view of it."""
    from dbdaora.backends.redis.single import RedisStore

    return RedisStore(redis_proc.url), RawView(None, raw_redis)


@pytest.fixture
def tracked_store(redis_proc: RedisServer, raw_redis: redis.Redis) -> tuple[Any, RawView]:
    """redis:// whose connection tracks keys (RESP3, CLIENT TRACKING): a cache listens."""
    from dbdaora.backends.redis.single import RedisStore
    from dbdaora.session.cache import EntityCache

    store = RedisStore(redis_proc.url)
    assert store.track(EntityCache(None, 1000))
    return store, RawView(None, raw_redis)


@pytest.fixture(scope="session")
def cluster_proc() -> Iterator[ClusterServer]:
    """A Redis Cluster of three private masters, for this test run only."""
    with redis_cluster() as cluster:
        yield cluster


@pytest.fixture
def raw_cluster(cluster_proc: ClusterServer) -> Iterator[RedisCluster]:
    """A plain redis-py cluster client on the private cluster, emptied after each test."""
    client = cluster_proc.client()
    cluster_proc.flushall()
    yield client
    cluster_proc.flushall()
    client.close()


@pytest.fixture
def cluster_store(cluster_proc: ClusterServer, raw_cluster: RedisCluster) -> tuple[Any, RawView]:
    """redis+cluster:// on the private cluster, with a plain redis-py view of it."""
    from dbdaora.backends.redis.cluster import ClusterStore

    return ClusterStore(cluster_proc.url), RawView(None, raw_cluster)


@pytest.fixture(scope="session")
def shards_proc() -> Iterator[ShardedServers]:
    """Three private redis-servers, sharded by the client as dbdaora 0.27 did."""
    with sharded_servers() as servers:
        yield servers


@pytest.fixture
def raw_shards(shards_proc: ShardedServers) -> Iterator[ShardedClient]:
    """A redis-py view of the shards, each key on its 0.27 shard; emptied after each test."""
    client = shards_proc.client()
    client.flushall()
    yield client
    client.flushall()
    client.close()


@pytest.fixture
def shards_store(shards_proc: ShardedServers, raw_shards: ShardedClient) -> tuple[Any, RawView]:
    """redis+shards:// on the private shards, with a plain redis-py view of them."""
    from dbdaora.backends.redis.shards import ShardedStore

    return ShardedStore(shards_proc.url), RawView(None, raw_shards)


@pytest.fixture(scope="session")
def sentinel_proc() -> Iterator[SentinelServer]:
    """A master, its replica and three sentinels, private, for this test run only."""
    with redis_sentinel() as deployment:
        yield deployment


@pytest.fixture
def sentinel(sentinel_proc: SentinelServer) -> Iterator[SentinelServer]:
    """The Sentinel deployment, emptied; a killed master is back as a replica after."""
    sentinel_proc.flushall()
    yield sentinel_proc
    sentinel_proc.restore()
    sentinel_proc.flushall()


@pytest.fixture
def dict_fallback() -> DictFallback:
    return DictFallback()


@pytest.fixture(scope="session")
def datastore_proc() -> Iterator[DatastoreEmulator]:
    """A Cloud Datastore emulator on a free loopback port, for this test run only."""
    if not EMULATOR.exists():
        pytest.skip(f"the Cloud Datastore emulator is not installed at {EMULATOR}")
    with datastore_emulator() as emulator:
        yield emulator


@pytest.fixture
def datastore_fallback(datastore_proc: DatastoreEmulator) -> Any:
    """datastore:// on the emulator, wiped first; the session using it closes it."""
    from dbdaora.backends.fallback.datastore.store import DatastoreFallback

    datastore_proc.reset()
    # A generous timeout: a busy machine slows the emulator; outages are tested apart.
    return DatastoreFallback(datastore_proc.url("contract", timeout=30))


@pytest.fixture(scope="session")
def postgres_proc() -> Iterator[PostgresServer]:
    """A private PostgreSQL on a free loopback port, for this test run only."""
    with postgres_server() as server:
        server.admin("CREATE DATABASE dbdaora_test")
        yield server


@pytest.fixture
def postgres_url(postgres_proc: PostgresServer) -> Iterator[str]:
    """The URL of the private PostgreSQL's test database, emptied after the test."""
    yield postgres_proc.url_of("dbdaora_test")
    postgres_proc.admin("DROP SCHEMA public CASCADE; CREATE SCHEMA public", database="dbdaora_test")


# The fallbacks' engines open lazily, in the test's loop; the session closes them, and
# their loop's shutdown disposes of any a test left open.


@pytest.fixture
def postgres_fallback(postgres_url: str) -> Any:
    """postgresql+asyncpg:// on a fresh database of the private server."""
    from dbdaora.backends.fallback.sql.store import SQLFallback

    return SQLFallback(postgres_url)


@pytest.fixture
def sqlite_fallback(tmp_path: Path) -> Any:
    """sqlite+aiosqlite:// on a fresh file."""
    from dbdaora.backends.fallback.sql.store import SQLFallback

    return SQLFallback(f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}")


@pytest.fixture(params=REDIS_SIDES)
def backend(request: pytest.FixtureRequest) -> tuple[Any, RawView]:
    """A Redis-side store under test and a raw view of what it holds."""
    pair: tuple[Any, RawView] = request.getfixturevalue(f"{request.param}_store")
    return pair


@pytest.fixture(params=STACKS)
async def session(request: pytest.FixtureRequest) -> AsyncIterator[Session]:
    """A session over one stack of the contract: a Redis side and a fallback."""
    redis_side, fallback_name = request.param
    store, view = request.getfixturevalue(f"{redis_side}_store")
    request.node.raw_view = view
    fallback = request.getfixturevalue(f"{fallback_name}_fallback")
    async with Session(memory=store, fallback=fallback, expire_time=3600) as s:
        yield s


@pytest.fixture
def raw(request: pytest.FixtureRequest, session: Session) -> RawView:
    """The raw view of the Redis side of ``session``."""
    view: RawView = request.node.raw_view
    return view


@pytest.fixture(autouse=True)
def clean_settings() -> Iterator[None]:
    """Each test starts from default settings."""
    settings.reset()
    yield
    settings.reset()


# The 0.27 API takes every real Redis URL (make_redis_data_source): one node, a cluster,
# a Sentinel deployment.
@pytest.fixture(params=["memory", "redis", "cluster", "sentinel"])
async def legacy_memory(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, RawView]]:
    """A 0.27 memory data source on each Redis side, with a raw view of what it holds:
    ``DictMemoryDataSource()``, or ``make_redis_data_source(url)`` on the private server,
    cluster or Sentinel deployment."""
    from dbdaora import DictMemoryDataSource, make_redis_data_source

    if request.param == "memory":
        source = DictMemoryDataSource()
        yield source, RawView(source, None)
        return
    client: redis.Redis | RedisCluster
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_proc")
        client = request.getfixturevalue("raw_redis")
        url = server.url
    elif request.param == "cluster":
        cluster: ClusterServer = request.getfixturevalue("cluster_proc")
        client = request.getfixturevalue("raw_cluster")
        url = cluster.url
    else:
        deployment: SentinelServer = request.getfixturevalue("sentinel")
        client = deployment.master().client()
        url = deployment.url()
    store = await make_redis_data_source(url)
    yield store, RawView(None, client)
    await store.close()
    if request.param == "sentinel":
        client.close()
