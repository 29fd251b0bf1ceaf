"""A plain redis-py view of the Redis side: what no store operation reads.

The stores keep the lease protocol and hold nothing else; the commands also need
the server's version, a SCAN over a model's key prefix, each key's type, TTL and
marker, and a delete of a marker only while it holds what was read. Every driver
error becomes a ``BackendError`` naming the masked URL and the cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException, RedisError

from dbdaora.backends.redis.scripts import glob_escape
from dbdaora.backends.redis.wire.cluster import parse_cluster_url
from dbdaora.backends.redis.wire.shards import by_shard, shard_urls
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, ConfigurationError, cause

SCAN_COUNT = 1000
_SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+shards",
    "rediss+shards",
)
_DRIVER_ERRORS = (RedisError, RedisClusterException, OSError)
# Deletes a key only while it holds what was read (a marker a write may have changed).
_DELETE_IF = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
)


def require_server(url: str) -> None:
    """Refuse ``memory://`` as the Redis side: no other process can reach it.

    Raises:
        ConfigurationError: the URL is ``memory://``.
    """
    if urlsplit(url).scheme == "memory":
        raise ConfigurationError(
            "memory:// lives inside one process, nothing outside it can reach it: "
            "give a Redis server (--memory redis://... or MEMORY in the settings)"
        )


@attrs.frozen
class Copy:
    """What Redis holds at one key: its type, TTL in seconds (None: no expiry or no key)
    and value (a hash's fields, a sorted set's members, a string)."""

    key: bytes
    kind: str
    ttl: float | None
    value: Any


class RawRedis:
    """redis-py on the Redis side's URL: a client of one node or a cluster, or one per
    server of 0.27's shards, each key read on its server."""

    def __init__(self, url: str, timeout: float) -> None:
        self.url = mask_url(url)
        require_server(url)
        scheme = urlsplit(url).scheme
        if scheme not in _SCHEMES:
            raise ConfigurationError(
                f"the command line reaches Redis by {', '.join(_SCHEMES)} URLs, not {self.url!r}"
            )
        timeouts: dict[str, Any] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
        self.clients: list[Any]
        try:
            if scheme.endswith("+cluster"):
                nodes, options = parse_cluster_url(url)
                cluster = RedisCluster(
                    startup_nodes=[ClusterNode(host, port) for host, port in nodes],
                    **{**options, **timeouts},
                )
                self.clients = [cluster]
            elif scheme.endswith("+shards"):
                self.clients = [Redis.from_url(shard, **timeouts) for shard in shard_urls(url)]
            else:
                self.clients = [Redis.from_url(url, **timeouts)]
        except (ValueError, *_DRIVER_ERRORS) as exc:
            raise ConfigurationError(f"bad Redis URL {self.url!r}: {exc}") from exc

    @contextlib.asynccontextmanager
    async def _failing(self, action: str) -> AsyncIterator[None]:
        try:
            yield
        except _DRIVER_ERRORS as exc:
            raise BackendError(f"Redis {action}: {cause(exc)}", url=self.url) from exc

    def _by_client(self, keys: Sequence[bytes]) -> dict[int, list[int]]:
        """The positions of ``keys`` by the client that reaches each (its shard's)."""
        return by_shard(keys, len(self.clients))

    async def close(self) -> None:
        for client in self.clients:
            with contextlib.suppress(*_DRIVER_ERRORS):
                await client.aclose()

    async def ping(self) -> None:
        async with self._failing("PING"):
            for client in self.clients:
                await client.ping()

    async def version(self) -> str:
        """``redis_version`` of INFO server (a cluster, shards: each server's, distinct)."""
        versions: set[str] = set()
        async with self._failing("INFO"):
            for client in self.clients:
                info = await client.info("server")
                if "redis_version" in info:
                    versions.add(str(info["redis_version"]))
                else:
                    versions.update(str(node["redis_version"]) for node in info.values())
        return ", ".join(sorted(versions))

    async def scan(self, prefix: bytes) -> AsyncIterator[list[bytes]]:
        """Every key under ``prefix``, a SCAN page at a time (a cluster, shards: every
        server's)."""
        page: list[bytes] = []
        async with self._failing("SCAN"):
            for client in self.clients:
                async for key in client.scan_iter(match=glob_escape(prefix), count=SCAN_COUNT):
                    page.append(key)
                    if len(page) >= SCAN_COUNT:
                        yield page
                        page = []
        if page:
            yield page

    async def peek(self, keys: Sequence[bytes]) -> list[Copy]:
        """Each key's type, TTL and value, in two pipelined round trips (a server each)."""
        copies: list[Any] = [None] * len(keys)
        for index, positions in self._by_client(keys).items():
            found = await self._peek(self.clients[index], [keys[i] for i in positions])
            for position, copy in zip(positions, found, strict=True):
                copies[position] = copy
        return copies

    async def _peek(self, client: Any, keys: Sequence[bytes]) -> list[Copy]:
        async with self._failing("read"):
            first = _pipeline(client)
            for key in keys:
                first.type(key)
                first.pttl(key)
            answers = await first.execute()
            kinds = [kind.decode() for kind in answers[0::2]]
            second = _pipeline(client)
            for key, kind in zip(keys, kinds, strict=True):
                if kind == "hash":
                    second.hgetall(key)
                elif kind == "zset":
                    second.zrange(key, 0, -1, withscores=True)
                elif kind == "string":
                    second.get(key)
                else:
                    second.exists(key)
            values = await second.execute(raise_on_error=False)
        return [
            Copy(key, kind, pttl / 1000 if pttl >= 0 else None, value)
            for key, kind, pttl, value in zip(keys, kinds, answers[1::2], values, strict=True)
        ]

    async def delete(self, keys: Sequence[bytes]) -> None:
        for index, positions in self._by_client(keys).items():
            pipeline = _pipeline(self.clients[index])
            for i in positions:  # one key a command: a cluster's keys live on several masters
                pipeline.delete(keys[i])
            async with self._failing("DEL"):
                await pipeline.execute()

    async def delete_if(self, key: bytes, value: bytes) -> bool:
        """Delete ``key`` only while it holds ``value``; whether it did."""
        (index,) = self._by_client([key])
        async with self._failing("delete marker"):
            return bool(await self.clients[index].eval(_DELETE_IF, 1, key, value))


def _pipeline(client: Any) -> Any:
    if isinstance(client, RedisCluster):
        return client.pipeline()
    return client.pipeline(transaction=False)
