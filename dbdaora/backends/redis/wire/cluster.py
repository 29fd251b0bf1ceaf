"""The link to a Redis Cluster (``redis+cluster://``, ``rediss+cluster://``).

The URL lists nodes to discover the cluster from (any reachable one will do),
with the single-node URL's password, TLS and query options:
``redis+cluster://[[user]:password@]host1:port1,host2:port2[?socket_timeout=2]``.
MOVED and ASK redirects are followed by redis-py's cluster client. A node that
is down, a timeout, or CLUSTERDOWN is retried once after re-reading the slot map,
then raised as ``BackendError``: with the default timeouts, within seconds.
Auto-pipelining batches across slots: redis-py's cluster pipeline splits each
batch by node.

Node by node: given a ``gate`` (the session's per-node breakers), the link routes
each operation to the master of its key's slot (the slot map it holds, no I/O),
asks the gate before sending, reports each answer or failure to that master's
name, and sends each master's commands in a pipeline of their own. A refused
master costs no round trip, and a hung one holds back only its own keys. A
gated link does not retry: a failure re-reads the slot map before the next
command, and a master the map names anew goes through the gate first. Errors
of the whole cluster (CLUSTERDOWN, no master for a slot, no node answering) are
no one master's: they are raised as they are, for the session's own breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import ClusterNode
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ClusterDownError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError

from dbdaora.backends.redis.protocol import NodeGate
from dbdaora.backends.redis.wire.link import Calls, Lua, PerLoop, failed
from dbdaora.backends.redis.wire.pipelining import AutoPipeline
from dbdaora.backends.redis.wire.tracking import BROADCAST_ON, Invalidations, Tracking
from dbdaora.backends.redis.wire.transport import Direct, Operation, key_of
from dbdaora.backends.redis.wire.watchers import MasterWatch
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, BadDataError, ConfigurationError

# Seconds; a URL's socket_timeout / socket_connect_timeout wins. Bounded so a
# hung node becomes a BackendError the breaker can count, not a stuck request.
SOCKET_TIMEOUT = 2.0
CONNECT_TIMEOUT = 1.0
# Once more after re-reading the slot map: enough to follow a failover that has
# already happened, few enough that a dead node fails fast.
RETRIES = 1
# Seconds a gated link waits for every master's answer to a command sent to each
# (INFO, CLUSTER INFO): one that is hung but not refused yet must not stall it.
MASTERS_WAIT = 0.5

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


# What opening a master's watching connection may raise, within MASTERS_WAIT.
WATCH_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, TimeoutError)

# Errors that say the cluster as a whole does not serve, not one master.
CLUSTER_ERRORS: tuple[type[BaseException], ...] = (ClusterDownError, RedisClusterException)


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
        self.gate: NodeGate | None = None
        self.tracking = Tracking(BROADCAST_ON)
        self._watches = PerLoop(self._open_watch)

    def _open_watch(self) -> MasterWatch:
        stall = self._options.get("socket_timeout") or SOCKET_TIMEOUT
        return MasterWatch(self.tracking, self._options, stall)

    def track(self, listener: Invalidations) -> bool:
        """Have ``listener`` told of every change on the masters (see ``watchers``)."""
        self.tracking.add(listener)
        return True

    def untrack(self, listener: Invalidations) -> None:
        self.tracking.remove(listener)

    async def _watched(self, operations: list[Operation]) -> tuple[str | None, ...] | None:
        """Before cached reads: the masters of their keys, each watched; None where one
        could not be watched in ``MASTERS_WAIT`` (the caller then keeps nothing)."""
        await self._mapped_transport()
        nodes = tuple(self._route(operation) for operation in operations)
        gate = self.gate
        # A master its breaker refuses is not waited for: the read will be refused too.
        watch = {n for n in nodes if n is not None and (gate is None or not gate.refuses(n))}
        try:
            await asyncio.wait_for(self._watches.current().ready(watch), MASTERS_WAIT)
        except WATCH_ERRORS:
            return None
        return nodes

    def _kept(self, operations: list[Operation], watched: tuple[str | None, ...] | None) -> None:
        """After cached reads: where a master was not watched, or a key's slot moved to
        another master meanwhile (MOVED, a failover), the listeners keep nothing."""
        if watched is None or tuple(self._route(op) for op in operations) != watched:
            self.tracking.lost()

    async def run_cached(self, operations: list[Operation]) -> list[Any]:
        """Reads whose answers a cache keeps: their masters watched first."""
        if not self.tracking.listeners:
            return await self.run_all(operations)
        watched = await self._watched(operations)
        results = await self.run_all(operations)
        self._kept(operations, watched)
        return results

    def _open(self) -> AutoPipeline | Direct:
        client = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in self._nodes],
            # With a gate, no retry behind it: redis-py would follow a failover to
            # a promoted replica the gate has not seen (it may hold older copies).
            retry=Retry(NoBackoff(), 0 if self.gate is not None else RETRIES),
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
        if self.gate is not None:
            self.gate.mapped([node.name for node in client.get_primaries()])

    def node_of(self, key: bytes | str) -> str | None:
        """The ``host:port`` of the master serving ``key``'s slot, in this loop's slot
        map; None before the map is read, or where no master serves the slot."""
        transport = self._transports.current()
        if self._mapped is not transport.client:
            return None
        client = transport.client
        try:
            return str(client.nodes_manager.get_node_from_slot(client.keyslot(key)).name)
        except DRIVER_ERRORS:
            return None

    def _route(self, operation: Operation) -> str | None:
        key = key_of(operation)
        return None if key is None else self.node_of(key)

    async def refresh(self) -> None:
        """Read the slot map again (a master failed: a replica may serve its slots now)."""
        transport = await self._mapped_transport()
        try:
            await transport.client.nodes_manager.initialize()
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc

    def _failure(
        self, gate: NodeGate, node: str | None, exc: BaseException
    ) -> BackendError | BadDataError:
        error = failed(self.url, exc)
        if node is None or isinstance(error, BadDataError) or isinstance(exc, CLUSTER_ERRORS):
            return error
        return gate.failed(node, error, lost=isinstance(exc, RedisConnectionError))

    async def run(self, operation: Operation) -> Any:
        transport = await self._mapped_transport()
        gate = self.gate
        node = None if gate is None else self._route(operation)
        if gate is None or node is None:
            try:
                return await transport.run(operation)
            except DRIVER_ERRORS as exc:
                raise failed(self.url, exc) from exc
        gate.check(node)
        try:
            result = await transport.run(operation, node)
        except DRIVER_ERRORS as exc:
            raise self._failure(gate, node, exc) from exc
        except asyncio.CancelledError:
            late = gate.expired(node)
            if late is None:
                raise
            raise late from None
        gate.answered(node)
        return result

    async def run_all(self, operations: list[Operation]) -> list[Any]:
        if len(operations) == 1:
            return [await self.run(operations[0])]
        transport = await self._mapped_transport()
        gate = self.gate
        if gate is None:
            try:
                return await transport.run_all(operations)
            except DRIVER_ERRORS as exc:
                raise failed(self.url, exc) from exc
        nodes = [self._route(operation) for operation in operations]
        for node in set(nodes):
            if node is not None:
                gate.check(node)
        try:
            results = await transport.run_all(operations, nodes, settle=True)
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc
        except asyncio.CancelledError:
            # Which master kept the others waiting is not known here: each counts.
            lates = [gate.expired(node) for node in set(nodes) if node is not None]
            late = next((error for error in lates if error is not None), None)
            if late is None:
                raise
            raise late from None
        # One failure counted per master and call, however many of its commands failed.
        errors: dict[str | None, BaseException] = {}
        for node, result in zip(nodes, results, strict=True):
            if isinstance(result, BaseException) and node not in errors:
                errors[node] = self._failure(gate, node, result)
                errors[node].__cause__ = result
        for node in set(nodes).difference(errors):
            if node is not None:
                gate.answered(node)
        if errors:
            raise next(iter(errors.values()))
        return results

    async def ask_masters(self, operation: Callable[[Any, Any], Awaitable[Any]]) -> dict[str, Any]:
        """``operation(client, master)`` on each master the gate does not refuse, at once;
        the replies of those that answered, by name. With a gate, a master that fails
        or takes over ``MASTERS_WAIT`` seconds is left out, and counted as failed."""
        transport = await self._mapped_transport()
        client, gate = transport.client, self.gate
        masters = [
            node for node in client.get_primaries() if gate is None or not gate.refuses(node.name)
        ]
        asks = {asyncio.ensure_future(operation(client, node)): node.name for node in masters}
        if not asks:
            return {}
        try:
            done, _ = await asyncio.wait(asks, timeout=None if gate is None else MASTERS_WAIT)
        finally:
            for task in asks:
                task.cancel()  # those still waiting: late, or their caller left
        replies: dict[str, Any] = {}
        for task, name in asks.items():
            error: BaseException | None = task.exception() if task in done else None
            if task in done and error is None:
                replies[name] = task.result()
            elif gate is not None:
                why = error or f"no answer within {MASTERS_WAIT}s"
                gate.failed(name, BackendError(f"Redis failed: {why}", url=self.url))
        return replies

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
        await self._watches.close()
        await self._transports.close()
