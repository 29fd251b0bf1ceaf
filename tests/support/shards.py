"""Private servers sharded by the client, as dbdaora 0.27's hash ring spreads keys.

``ShardedServers`` starts a ``redis-server`` per shard; ``ShardedClient`` is a plain
redis-py view of them that places each key as 0.27's ``HashRing`` does, computed
here again (the MD5 of the key as a 128-bit number, modulo the server count), so
a test checks the store's placement against the formula, not against itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import redis

from tests.support.servers import RedisServer, redis_server

SHARDS = 3


def ring_index(key: bytes | str, count: int) -> int:
    """0.27's ``HashRing.get_index``: ``int(md5(str(key).encode()).hexdigest(), 16) % count``."""
    text = key.decode() if isinstance(key, bytes) else key
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % count


class ShardedServers:
    """The shards' servers, in ring order."""

    def __init__(self, servers: list[RedisServer]) -> None:
        self.servers = servers

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    @property
    def url(self) -> str:
        """The ``redis+shards://`` URL of the servers, in ring order."""
        return "redis+shards://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def client(self) -> ShardedClient:
        return ShardedClient([server.client() for server in self.servers])


@contextmanager
def sharded_servers(count: int = SHARDS) -> Iterator[ShardedServers]:
    with ExitStack() as stack:
        yield ShardedServers([stack.enter_context(redis_server()) for _ in range(count)])


class ShardedClient:
    """redis-py's commands, each sent to its key's shard (``keys``, ``flushall``: to all)."""

    def __init__(self, clients: list[redis.Redis]) -> None:
        self.clients = clients

    def of(self, key: bytes | str) -> redis.Redis:
        return self.clients[ring_index(key, len(self.clients))]

    def __getattr__(self, command: str) -> Any:
        """A command of one key (its first argument), sent to that key's shard."""

        def send(key: bytes | str, *args: Any, **options: Any) -> Any:
            return getattr(self.of(key), command)(key, *args, **options)

        return send

    def delete(self, *keys: bytes) -> None:
        for key in keys:
            self.of(key).delete(key)

    def keys(self, pattern: str = "*") -> list[bytes]:
        return [key for client in self.clients for key in client.keys(pattern)]

    def flushall(self) -> None:
        for client in self.clients:
            client.flushall()

    def close(self) -> None:
        for client in self.clients:
            client.close()
