"""Client tracking on a Redis Cluster: one watching connection per master.

A cluster's reads go through redis-py's cluster client, whose pooled
connections cannot carry ``CLIENT CACHING YES`` next to a read nor read pushes
while idle. So each master gets a connection of its own, a ``Multiplexer`` in
RESP3 with ``CLIENT TRACKING ON BCAST``: Redis pushes it every key the master
changes, whoever changed it, with no read needed to track a key.

The pushes come on another connection than the reads, so they are not in order
with the replies: a cache fill is kept only if no invalidation of its key (and
no flush) came after the ticket its reader took before sending the read (the
per-key generation of ``session.cache``). A write that changes the key after the
read was served is pushed after that, so it refuses the fill or drops the entry.

Before a cached read, the master serving the key must have a watching
connection that is open: one is opened (which flushes the listeners: what
changed before it is unknown) and a PING through it, behind the tracking
command, says tracking is on. Losing a watching connection, by a failure, its
heartbeat or the close, flushes the listeners too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from typing import Any

from redis.asyncio.connection import Connection, SSLConnection

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.wire.multiplex import Multiplexer
from dbdaora.backends.redis.wire.tracking import Tracking

# The redis-py connection options a watching connection takes from the cluster's.
_OPTIONS = ("username", "password", "socket_timeout", "socket_connect_timeout", "client_name")


class MasterWatch:
    """The watching connections of one event loop, by master ``host:port``.

    Args:
        tracking: the link's listeners (``BROADCAST_ON``).
        options: the cluster client's redis-py options.
        stall_timeout: seconds an idle watcher may go unanswered (its heartbeat).
    """

    def __init__(self, tracking: Tracking, options: dict[str, Any], stall_timeout: float):
        self._tracking = tracking
        self._stall_timeout = stall_timeout
        self._ssl = bool(options.get("ssl"))
        self._options = {
            name: value
            for name, value in options.items()
            if name in _OPTIONS or (self._ssl and name.startswith("ssl_"))
        }
        self._watchers: dict[str, Multiplexer] = {}
        # Per master, the PING sent behind its tracking command: done, tracking is on.
        self._pings: dict[str, asyncio.Future[Any]] = {}

    def _connect(self, node: str) -> Connection:
        host, _, port = node.rpartition(":")
        kind = SSLConnection if self._ssl else Connection
        return kind(host=host, port=int(port), **self._options)

    async def ready(self, nodes: Iterable[str]) -> None:
        """Have every one of ``nodes`` watched; open (and wait for) those that are not.

        Raises:
            redis-py's or the socket's error: a master could not be watched.
        """
        waits = []
        for node in nodes:
            watcher = self._watchers.get(node)
            if watcher is None:
                watcher = self._watchers[node] = Multiplexer(
                    functools.partial(self._connect, node),
                    stall_timeout=self._stall_timeout,
                    tracking=self._tracking,
                )
            ping = self._pings.get(node)
            if (
                ping is None
                or not watcher.tracking_live
                or ping.cancelled()
                or (ping.done() and ping.exception() is not None)
            ):
                ping = self._pings[node] = watcher.run(ops.ping())
            if not ping.done():
                waits.append(asyncio.shield(ping))  # other readers may wait for it too
        if waits:
            await asyncio.gather(*waits)

    async def close(self) -> None:
        watchers, self._watchers = self._watchers, {}
        await asyncio.gather(*(watcher.close() for watcher in watchers.values()))
