"""``RawView``: what the Redis side holds, read as plain data whichever store holds it."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

from tests.support.shards import ShardedClient


class RawView:
    """Reads the Redis side as plain data, whichever backend holds it."""

    def __init__(
        self, store: Any, client: redis.Redis | RedisCluster | ShardedClient | None
    ) -> None:
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
        """Every key but dbdaora's own bookkeeping (``dbdaora:epoch``, the sweep lock)."""
        if isinstance(self.client, RedisCluster):
            keys = set(self.client.keys("*", target_nodes=RedisCluster.PRIMARIES))
        elif self.client is not None:
            keys = set(self.client.keys("*"))
        else:
            keys = set(self.store.keys())
        return {key for key in keys if not key.startswith(b"dbdaora:")}

    def delete(self, key: bytes) -> None:
        if self.client is not None:
            self.client.delete(key)
        else:
            self.store._delete(key)

    def hset(self, key: bytes, field: bytes, value: bytes) -> None:
        if self.client is not None:
            self.client.hset(key, field, value)
        else:
            self.store._hset(key, {field: value})

    def set(self, key: bytes, value: bytes) -> None:
        """A string at ``key``: where a hash or a sorted set belongs, a key of the wrong type."""
        if self.client is not None:
            self.client.set(key, value)
        else:
            self.store._set(key, value, None)

    def flushall(self) -> None:
        """FLUSHALL on every master (on ``memory://``, every key dropped)."""
        if isinstance(self.client, RedisCluster):
            self.client.flushall(target_nodes=RedisCluster.PRIMARIES)
        elif self.client is not None:
            self.client.flushall()
        else:
            for key in list(self.store.keys()):
                self.store._delete(key)
