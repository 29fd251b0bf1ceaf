"""Fixtures: a private redis-server for the session, and a store per backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

from dbdaora import Session, settings
from dbdaora.backends.memory import DictFallback, MemoryStore
from tests.servers import RedisServer, redis_server


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


class RawView:
    """Reads the Redis side as plain data, whichever backend holds it."""

    def __init__(self, store: Any, client: redis.Redis | None) -> None:
        self.store = store
        self.client = client

    def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        if self.client is not None:
            return self.client.hgetall(key)  # type: ignore[return-value]
        value = self.store.raw(key)
        return dict(value) if isinstance(value, dict) else {}

    def get(self, key: bytes) -> bytes | None:
        if self.client is not None:
            return self.client.get(key)  # type: ignore[return-value]
        value = self.store.raw(key)
        return value if isinstance(value, bytes) else None

    def zrange(self, key: bytes) -> list[tuple[bytes, float]]:
        if self.client is not None:
            return self.client.zrange(key, 0, -1, withscores=True)  # type: ignore[return-value]
        value = self.store.raw(key) or {}
        return sorted(value.items(), key=lambda pair: (pair[1], pair[0]))

    def exists(self, key: bytes) -> bool:
        if self.client is not None:
            return bool(self.client.exists(key))
        return self.store.raw(key) is not None

    def ttl(self, key: bytes) -> float | None:
        """Seconds left; None when the key has no expiry."""
        if self.client is not None:
            ttl = self.client.ttl(key)
            assert ttl != -2, f"{key!r} does not exist"
            return None if ttl == -1 else float(ttl)
        assert self.store.raw(key) is not None, f"{key!r} does not exist"
        return self.store.ttl(key)

    def all_keys(self) -> set[bytes]:
        if self.client is not None:
            return set(self.client.keys("*"))
        return set(self.store.keys())

    def delete(self, key: bytes) -> None:
        if self.client is not None:
            self.client.delete(key)
        else:
            self.store._delete(key)

    def hset(self, key: bytes, field: bytes, value: bytes) -> None:
        if self.client is not None:
            self.client.hset(key, field, value)
        else:
            self.store._hash(key)[field] = value


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[Any, RawView]]:
    """The Redis-side store under test and a raw view of what it holds."""
    if request.param == "memory":
        store = MemoryStore()
        yield store, RawView(store, None)
        return
    client = request.getfixturevalue("raw_redis")
    proc = request.getfixturevalue("redis_proc")
    from dbdaora.backends.redis import RedisStore

    yield RedisStore(proc.url), RawView(None, client)


@pytest.fixture
async def session(backend: tuple[Any, RawView]) -> AsyncIterator[Session]:
    store, _ = backend
    async with Session(memory=store, fallback=DictFallback(), expire_time=3600) as s:
        yield s


@pytest.fixture
def raw(backend: tuple[Any, RawView]) -> RawView:
    return backend[1]


@pytest.fixture(autouse=True)
def clean_settings() -> Iterator[None]:
    """Each test starts from default settings."""
    settings.reset()
    yield
    settings.reset()
