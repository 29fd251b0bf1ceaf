"""The link to Redis servers that share the keys by the client (``redis+shards://``).

dbdaora 0.27 spread keys over several servers with a hash ring of its own: a key
lives on the server at index ``md5(key) mod N`` of the list it was given (N the
list's length). ``ShardLink`` places every key there too, so data 0.27 wrote is
found where it is, and the two can share the servers. The servers are
independent: nothing moves keys between them, and the order of the list is part
of the layout (the same servers in another order are another ring).

Each server has a ``NodeLink`` of its own: auto-pipelined on one multiplexed
connection, scripts by SHA, client tracking on that connection. An operation goes
to the server of its key (``key_of``); several go out at once, a batch per
server, and come back in their order. A link must not hold store policy.

Server by server: given a ``gate`` (the session's per-node breakers, as for a
cluster's masters), the link asks it before sending to a server, named by its
masked URL, and reports each answer or failure there: a refused server costs no
round trip, and a server that is down or hung holds back only its own keys.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from redis.exceptions import ConnectionError as RedisConnectionError

from dbdaora.backends.redis.protocol import NodeGate
from dbdaora.backends.redis.wire.link import Calls, Lua
from dbdaora.backends.redis.wire.node import NodeLink
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.backends.redis.wire.transport import Operation, key_of
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, ConfigurationError

T = TypeVar("T")

SHARD_SCHEMES = ("redis", "rediss", "unix")
"""The schemes of one shard's URL."""


def shard_index(key: bytes | str, count: int) -> int:
    """The index of ``key``'s server among ``count``: 0.27's ``HashRing.get_index``
    (the MD5 of the key's UTF-8 text, as one number, modulo ``count``)."""
    data = key.encode() if isinstance(key, str) else key
    return int.from_bytes(hashlib.md5(data, usedforsecurity=False).digest(), "big") % count


def by_shard(keys: Iterable[bytes | str | None], count: int) -> dict[int, list[int]]:
    """The positions of ``keys``, grouped by the index of their shard among ``count``;
    a key of None (a command of no key, as PING) goes to the first."""
    groups: dict[int, list[int]] = {}
    for position, key in enumerate(keys):
        index = 0 if key is None or count == 1 else shard_index(key, count)
        groups.setdefault(index, []).append(position)
    return groups


def shard_urls(url: str) -> list[str]:
    """Each shard's ``redis://`` (``rediss://``) URL, in ring order, from
    ``redis+shards://[[user]:password@]host1:port1,host2:port2[/db][?options]``:
    every shard takes the URL's credentials, database and options.

    Raises:
        ConfigurationError: not such a URL, or a shard is not ``host:port``.
    """
    masked = mask_url(url)
    parts = urlsplit(url)
    if parts.scheme not in ("redis+shards", "rediss+shards"):
        raise ConfigurationError(f"{masked!r} is not a redis+shards:// URL")
    scheme = parts.scheme.partition("+")[0]
    userinfo, at, hosts = parts.netloc.rpartition("@")
    urls = []
    for address in hosts.split(","):
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ConfigurationError(
                f"bad redis+shards:// URL {masked!r}: {address!r} is not host:port"
            )
        netloc = f"{userinfo}{at}{host}:{port}"
        urls.append(urlunsplit((scheme, netloc, parts.path, parts.query, "")))
    return urls


class ShardLink:
    """The connection side of ``ShardedStore``: a ``NodeLink`` per shard, in ring order.

    Args:
        urls: each shard's ``redis://``, ``rediss://`` or ``unix://`` URL, in the
            order of the ring (0.27's ``make_aioredis_data_source(*uris)`` order).
        autopipeline: multiplex each shard's commands on one connection.
        options: redis-py client options for every shard.
        ring_size: the ring's modulus, 0.27's ``hashring_nodes_size``: keys go to the
            first ``ring_size`` servers only; None is every server.

    Raises:
        ConfigurationError: no URL, one that is not a shard's, or a ring size that
            is not between 1 and the number of servers.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        autopipeline: bool,
        options: dict[str, Any],
        ring_size: int | None = None,
    ) -> None:
        if not urls:
            raise ConfigurationError("sharded Redis needs at least one server URL")
        size = len(urls) if ring_size is None else ring_size
        if type(size) is not int or not 1 <= size <= len(urls):
            raise ConfigurationError(
                f"the ring size (hashring_nodes_size) must be an int from 1 to the "
                f"{len(urls)} servers given, got {ring_size!r}"
            )
        for url in urls:
            if urlsplit(url).scheme not in SHARD_SCHEMES:
                raise ConfigurationError(
                    f"{mask_url(url)!r} is not a shard's URL; schemes: {list(SHARD_SCHEMES)}"
                )
        urls = urls[:size]  # a server past the ring's size holds no key
        self.nodes = [NodeLink(url, autopipeline=autopipeline, options=options) for url in urls]
        self.names = [node.url for node in self.nodes]
        if len(set(self.names)) < len(self.names):
            raise ConfigurationError(f"a server is listed twice among the shards {self.names}")
        self.url = f"shards({', '.join(self.names)})"
        self.gate: NodeGate | None = None

    def watch(self, gate: NodeGate) -> None:
        """Ask ``gate`` before sending to a server, and report to it each outcome."""
        self.gate = gate
        gate.mapped(self.names)

    def index_of(self, key: bytes | str | None) -> int:
        """The index of ``key``'s shard; a command of no key (PING) goes to the first."""
        if key is None or len(self.nodes) == 1:
            return 0
        return shard_index(key, len(self.nodes))

    def _on(
        self, index: int, call: Callable[[NodeLink], Coroutine[Any, Any, T]]
    ) -> Coroutine[Any, Any, T]:
        """``call`` on shard ``index``'s link, through the gate where there is one."""
        if self.gate is None:
            return call(self.nodes[index])
        return self._gated(self.gate, index, call)

    async def _gated(
        self, gate: NodeGate, index: int, call: Callable[[NodeLink], Coroutine[Any, Any, T]]
    ) -> T:
        name = self.names[index]
        gate.check(name)
        try:
            result = await call(self.nodes[index])
        except BackendError as exc:
            lost = isinstance(exc.__cause__, RedisConnectionError | ConnectionError)
            raise gate.failed(name, exc, lost=lost) from exc
        except asyncio.CancelledError:
            late = gate.expired(name)
            if late is None:
                raise
            raise late from None
        gate.answered(name)
        return result

    def track(self, listener: Invalidations) -> bool:
        """Have ``listener`` told of changes on every shard (each tracks its own reads)."""
        return all([node.track(listener) for node in self.nodes])

    def untrack(self, listener: Invalidations) -> None:
        for node in self.nodes:
            node.untrack(listener)

    # run and run_script hand back the node's coroutine: no frame of their own.
    def run(self, operation: Operation, *, cached: bool = False) -> Coroutine[Any, Any, Any]:
        index = self.index_of(key_of(operation))
        return self._on(index, lambda node: node.run(operation, cached=cached))

    async def run_all(self, operations: list[Operation], *, cached: bool = False) -> list[Any]:
        def batch(positions: list[int]) -> Callable[[NodeLink], Coroutine[Any, Any, list[Any]]]:
            chosen = [operations[i] for i in positions]
            return lambda node: node.run_all(chosen, cached=cached)

        return await self._spread((key_of(operation) for operation in operations), batch)

    def run_script(
        self, script: Lua, keys: list[bytes], args: list[Any], *, cached: bool = False
    ) -> Coroutine[Any, Any, Any]:
        index = self.index_of(keys[0] if keys else None)
        return self._on(index, lambda node: node.run_script(script, keys, args, cached=cached))

    async def run_scripts(self, script: Lua, calls: Calls) -> list[Any]:
        def batch(positions: list[int]) -> Callable[[NodeLink], Coroutine[Any, Any, list[Any]]]:
            chosen = [calls[i] for i in positions]
            return lambda node: node.run_scripts(script, chosen)

        return await self._spread([keys[0] if keys else None for keys, _ in calls], batch)

    async def _spread(
        self,
        keys: Iterable[bytes | str | None],
        batch: Callable[[list[int]], Callable[[NodeLink], Coroutine[Any, Any, list[Any]]]],
    ) -> list[Any]:
        """Each shard's ``batch`` of the positions of its keys, at once; the replies in
        the keys' order, the first failure raised once every shard has answered."""
        groups = by_shard(keys, len(self.nodes))
        if len(groups) == 1:
            ((index, positions),) = groups.items()
            return await self._on(index, batch(positions))
        replies = await asyncio.gather(
            *(self._on(index, batch(positions)) for index, positions in groups.items()),
            return_exceptions=True,
        )
        return _merged(sum(map(len, groups.values())), groups, replies)

    async def close(self) -> None:
        for node in self.nodes:
            await node.close()


def _merged(
    count: int, groups: dict[int, list[int]], replies: Sequence[list[Any] | BaseException]
) -> list[Any]:
    """Each shard's replies put back in the order of the operations; the first failure
    raised once every shard has answered (no shard's batch is left running)."""
    results: list[Any] = [None] * count
    for positions, reply in zip(groups.values(), replies, strict=True):
        if isinstance(reply, BaseException):
            raise reply
        for position, result in zip(positions, reply, strict=True):
            results[position] = result
    return results
