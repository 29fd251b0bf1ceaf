"""``redis+cluster://``, ``rediss+cluster://``: the Redis side on a Redis Cluster.

The URL, redirects, retries and failures are the link's (``wire.cluster``);
this module holds the store operations, and the order that keeps them safe.

Why the writes are separate commands, and in which order: an entity's key
and its marker hash to different slots, often on different masters, so the
writes are the ordered single-key steps of ``ordered`` (its docstring has the
proof), which this store shares with the client-side shards of ``shards``.

Restarts (``ordered`` says how the epochs of several servers work): a master
the session's breakers refuse counts as dead, and so does one that takes over
``MASTERS_WAIT`` to answer INFO (a hung one must not stall the check).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.ordered import OrderedWrites
from dbdaora.backends.redis.protocol import (
    SWEEP_BATCH,
    SWEEP_KEY,
    SWEEP_LOCK_SECONDS,
    NodeGate,
    RedisSide,
)
from dbdaora.backends.redis.scripts import glob_escape, restored_from_disk
from dbdaora.backends.redis.wire.cluster import ClusterLink
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.backends.redis.wire.transport import Operation
from dbdaora.exceptions import BackendError

# The key the ping asks about; dbdaora's keys are a model's name and ':'-joined parts.
PING_KEY = b"dbdaora:ping"


class ClusterStore(OrderedWrites):
    """The Redis side on a Redis Cluster: every command touches one key.

    Everything that reads or touches one key is shared with the single-node
    store; the writes that span an entity's key and its marker are the ordered
    sequences of ``OrderedWrites``. Like every store, it holds only its
    operations and its link: no connections, slot maps or driver errors.

    Args:
        url: ``redis+cluster://`` with the nodes to discover the cluster from.
        autopipeline: batch the commands of one event-loop iteration (the default).
        options: redis-py client options, over the URL's and dbdaora's defaults.

    Raises:
        ConfigurationError: the URL does not parse.
    """

    def __init__(self, url: str, *, autopipeline: bool = True, **options: Any) -> None:
        link = ClusterLink(url, autopipeline=autopipeline, options=options)
        super().__init__(link, autopipeline=autopipeline)
        self._cluster = link

    # Tracked: each master watched by a connection of its own (``wire.watchers``).

    def track(self, listener: Invalidations) -> bool:
        return self._cluster.track(listener)

    def untrack(self, listener: Invalidations) -> None:
        self._cluster.untrack(listener)

    async def _read(self, operation: Operation) -> Any:
        return (await self._cluster.run_cached([operation]))[0]

    def _read_all(self, operations: list[Operation]) -> Coroutine[Any, Any, list[Any]]:
        return self._cluster.run_cached(operations)

    async def ping(self) -> None:
        if self._cluster.gate is not None:
            # The masters have breakers of their own: this one asks whether the
            # cluster serves (cluster_state), from any master that answers.
            states = await self._cluster.ask_masters(
                lambda client, node: client.cluster_info(target_nodes=node)
            )
            if not any(state.get("cluster_state") == "ok" for state in states.values()):
                raise BackendError(f"the cluster does not serve: {states}", url=self.url)
            return
        # redis-py's cluster pipelines refuse PING, and auto-pipelining may batch
        # this call: one key's EXISTS is the same cheap round trip, to one master.
        await self._link.run(ops.exists(PING_KEY))

    # Node by node (``NodeRouting``): the session keeps a breaker per master.

    def watch_nodes(self, gate: NodeGate) -> None:
        self._cluster.gate = gate

    def node_of(self, key: bytes) -> str | None:
        return self._cluster.node_of(key)

    async def ping_node(self, node: str) -> None:
        """PING one master. Where it no longer serves slots (a replica took them over),
        the slot map is read again and the ping answers: nothing routes there now."""

        async def ping(client: Any) -> None:
            target = client.get_node(node_name=node)
            if target is None or target not in client.get_primaries():
                return
            await client.ping(target_nodes=target)

        try:
            await self._cluster.run_on_client(ping)
        except BackendError:
            # A failover may have happened: the next ping sees the new slot map.
            await self._cluster.refresh()
            raise

    async def _masters(self) -> dict[str, tuple[bytes, bool]]:
        """Each master that answers, with its run_id and whether its data may predate it
        (``restored_from_disk``): a dead one holds nothing to serve, and one the
        session's breakers refuse is left out as a dead one."""
        infos = await self._cluster.ask_masters(
            lambda client, node: client.execute_command(
                "INFO", "server", "persistence", "replication", target_nodes=node
            )
        )
        if not infos:
            raise BackendError("no master of the cluster answers", url=self.url)
        return {
            name: (str(info["run_id"]).encode(), restored_from_disk(info))
            for name, info in infos.items()
        }

    async def _unlink_matching(self, node: str, prefix: bytes) -> None:
        async def scan(client: Any) -> None:
            cursor: Any = 0
            while True:
                found = await client.scan(
                    cursor,
                    match=glob_escape(prefix),
                    count=SWEEP_BATCH,
                    target_nodes=client.get_node(node_name=node),
                )
                cursor, keys = found
                if isinstance(cursor, dict):  # by node name, even for one node
                    (cursor,) = cursor.values()
                for key in keys:  # one command a key: they are in many slots
                    await client.unlink(key)
                await client.expire(SWEEP_KEY, SWEEP_LOCK_SECONDS)
                if not int(cursor):
                    return

        await self._cluster.run_on_client(scan)


if TYPE_CHECKING:
    _conforms: type[RedisSide] = ClusterStore
