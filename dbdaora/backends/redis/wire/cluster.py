"""The link to a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``).

The URL lists nodes to discover the cluster from (any reachable one will do),
with the single-node URL's password, TLS and query options:
``redis+cluster://[[user]:password@]host1:port1,host2:port2[?socket_timeout=2]``.
MOVED and ASK redirects are followed by redis-py's cluster client. A node that
is down, a timeout, or CLUSTERDOWN is retried once after re-reading the slot map,
then raised as ``BackendError``: with the default timeouts, within seconds.
Auto-pipelining batches across slots: redis-py's cluster pipeline splits each
batch by node.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from dbdaora.backends.redis.wire.link import Calls, Lua, PerLoop, failed
from dbdaora.backends.redis.wire.pipelining import AutoPipeline
from dbdaora.backends.redis.wire.transport import Direct, Operation
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import ConfigurationError

# Seconds; a URL's socket_timeout / socket_connect_timeout wins. Bounded so a
# hung node becomes a BackendError the breaker can count, not a stuck request.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
# Once more after re-reading the slot map: enough to follow a failover that has
# already happened, few enough that a dead node fails fast.
RETRIES = 1

# What the driver raises when a node cannot be reached or answers an error:
# RedisClusterException (not a RedisError) when no node answers or a slot has
# no master; AttributeError when redis-py closes the connections of commands
# in flight as it handles CLUSTERDOWN for another one (redis-py 8.1).
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    RedisError,
    OSError,
    RedisClusterException,
    AttributeError,
)


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The (host, port) of each listed node, and the client options of the URL.

    Raises:
        ValueError: a node is not ``host:port``, or the URL names a database other than 0.
    """
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    nodes = []
    for address in hosts.split(","):
        host, colon, port = address.rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"{address!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
    first = f"{userinfo}{at}{nodes[0][0]}:{nodes[0][1]}"
    options: dict[str, Any] = dict(
        parse_url(urlunsplit((scheme, first, parts.path, parts.query, "")))
    )
    options.pop("host", None)
    options.pop("port", None)
    if options.pop("db", 0):
        raise ValueError("a cluster has only database 0")
    if options.pop("connection_class", None) is SSLConnection:
        options["ssl"] = True
    return nodes, options


def _eval(script: Lua, keys: list[bytes], args: list[Any]) -> Operation:
    # Cluster pipelines refuse EVALSHA (a node may never have seen the script);
    # EVAL carries the source, and each node keeps it compiled after the first.
    return lambda target: target.eval(script.source, len(keys), *keys, *args)


class ClusterLink:
    """The connection side of ``ClusterStore``: a cluster client per event loop.

    It holds the client's options, the clients and which of them has read the
    slot map; it must not hold store policy (which commands an operation sends,
    the lease protocol, the order of the cluster's writes).

    Args:
        url: ``redis+cluster://`` with the nodes to discover the cluster from.
        autopipeline: batch the commands of one event-loop iteration, rather
            than one pooled connection per call.
        options: redis-py client options; they win over the URL's and dbdaora's.

    Raises:
        ConfigurationError: the URL does not parse.
    """

    def __init__(self, url: str, *, autopipeline: bool, options: dict[str, Any]) -> None:
        self.url = mask_url(url)
        try:
            self._nodes, parsed = parse_cluster_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis Cluster URL {self.url!r}: {exc}") from exc
        self._options: dict[str, Any] = {
            "protocol": 2,
            "decode_responses": False,
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": CONNECT_TIMEOUT,
            **parsed,
            **options,
        }
        self._autopipeline = autopipeline
        self._transports = PerLoop(self._open)
        self._mapped: Any = None

    def _open(self) -> AutoPipeline | Direct:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._nodes],
            retry=Retry(NoBackoff(), RETRIES),
            **self._options,
        )
        return AutoPipeline(client) if self._autopipeline else Direct(client)

    async def _mapped_transport(self) -> AutoPipeline | Direct:
        """This loop's transport, its client having read the slot map."""
        transport = self._transports.current()
        if self._mapped is not transport.client:
            await self._map_slots(transport.client)
        return transport

    async def _map_slots(self, client: Any) -> None:
        """Have a new client read the slot map before its first command.

        redis-py's cluster client, when many commands start at once on a fresh
        client, can disconnect connections other commands are using while it maps
        the cluster: so the first command maps it alone.
        """
        try:
            await client.initialize()
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc
        self._mapped = client

    async def run(self, operation: Operation) -> Any:
        transport = await self._mapped_transport()
        try:
            return await transport.run(operation)
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc

    async def run_all(self, operations: list[Operation]) -> list[Any]:
        if len(operations) == 1:
            return [await self.run(operations[0])]
        transport = await self._mapped_transport()
        try:
            return await transport.run_all(operations)
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc

    async def run_on_client(self, operation: Operation) -> Any:
        """One operation on the cluster client itself, not batched: for commands
        that address several masters (``target_nodes``) or iterate (``scan_iter``)."""
        transport = await self._mapped_transport()
        try:
            return await operation(transport.client)
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc

    async def run_script(self, script: Lua, keys: list[bytes], args: list[Any]) -> Any:
        return await self.run(_eval(script, keys, args))

    async def run_scripts(self, script: Lua, calls: Calls) -> list[Any]:
        return await self.run_all([_eval(script, keys, args) for keys, args in calls])

    async def close(self) -> None:
        await self._transports.close()
