"""``redis+shards://``, ``rediss+shards://``: the Redis side on servers that share the
keys by the client, as dbdaora 0.27's ``make_aioredis_data_source(*uris)`` did.

Each key lives on the server 0.27's hash ring names (``wire.shards``): so an
entity's key and its marker often live on two servers, and the writes are the
ordered single-key steps of ``ordered``, as on a Redis Cluster. A server that
restarts is seen by its new run_id (``ordered``'s epochs), and every prefix is
swept on every server. Each server keeps a copy of ``dbdaora:epoch``, so the
restart check needs only the servers that answer: a copy that says a prefix is
current was written by a sweep under every run_id that answers now, and a copy
a down server missed only says stale (one more sweep, never a stale copy
served). The session keeps a breaker per server, as per cluster master
(``NodeRouting``): one server down or hung sends only its keys to the fallback.
The store holds its operations and its link, nothing else.

Adding or removing a server moves most keys to another one (0.27's ring is a
plain modulo): their copies on the old server are then neither read nor
written, so a resized ring starts from empty copies (flush the servers, or let
the TTLs lapse) and refills from the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.ordered import OrderedWrites
from dbdaora.backends.redis.protocol import (
    EPOCH_KEY,
    SWEEP_BATCH,
    SWEEP_KEY,
    SWEEP_LOCK_SECONDS,
    NodeGate,
    RedisSide,
)
from dbdaora.backends.redis.scripts import EPOCHS, UNLINK_SCANNED, glob_escape
from dbdaora.backends.redis.wire.cluster import MASTERS_WAIT
from dbdaora.backends.redis.wire.node import NodeLink
from dbdaora.backends.redis.wire.shards import ShardLink, shard_urls
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.backends.redis.wire.transport import Operation
from dbdaora.exceptions import BackendError

T = TypeVar("T")


class ShardedStore(OrderedWrites):
    """The Redis side on several independent servers, each key on the one 0.27 put it.

    Args:
        url: ``redis+shards://[[user]:password@]host1:port1,host2:port2[/db][?options]``
            (every server with the same credentials, database and options), or each
            server's own ``redis://``, ``rediss://`` or ``unix://`` URL, in ring order.
        autopipeline: batch each server's commands of one event-loop iteration.
        ring_size: 0.27's ``hashring_nodes_size``: the ring's modulus, keys on the
            first ``ring_size`` servers only (None: every server).
        options: redis-py client options for every server.

    Raises:
        ConfigurationError: a URL does not parse, no server is given, or the ring
            size is not from 1 to the number of servers.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        autopipeline: bool = True,
        ring_size: int | None = None,
        **options: Any,
    ) -> None:
        urls = shard_urls(url) if isinstance(url, str) else list(url)
        self._shards = ShardLink(
            urls, autopipeline=autopipeline, options=options, ring_size=ring_size
        )
        super().__init__(self._shards, autopipeline=autopipeline)
        self._named = dict(zip(self._shards.names, self._shards.nodes, strict=True))

    # Tracked: each server tracks the reads its own connection sent.

    def track(self, listener: Invalidations) -> bool:
        return self._shards.track(listener)

    def untrack(self, listener: Invalidations) -> None:
        self._shards.untrack(listener)

    def _read(self, operation: Operation) -> Coroutine[Any, Any, Any]:
        return self._shards.run(operation, cached=True)

    def _read_all(self, operations: list[Operation]) -> Coroutine[Any, Any, list[Any]]:
        return self._shards.run_all(operations, cached=True)

    async def ping(self) -> None:
        gate = self._shards.gate
        replies = await asyncio.gather(
            *(
                link.run(ops.ping())
                for name, link in self._named.items()
                if gate is None or not gate.refuses(name)
            ),
            return_exceptions=True,
        )
        failures = [reply for reply in replies if isinstance(reply, BaseException)]
        # Alone, Redis serves when every server does: a key on any may be asked for.
        # Server by server, each has its breaker: Redis serves while any answers.
        if failures and (gate is None or len(failures) == len(replies)):
            raise failures[0]

    # Server by server (``NodeRouting``): the session keeps a breaker per server.

    def watch_nodes(self, gate: NodeGate) -> None:
        self._shards.watch(gate)

    def node_of(self, key: bytes) -> str | None:
        return self._shards.names[self._shards.index_of(key)]

    async def ping_node(self, node: str) -> None:
        await self._named[node].run(ops.ping())

    async def _ask(self, call: Callable[[NodeLink], Awaitable[T]]) -> dict[str, T]:
        """``call`` on every server at once; the answers of those that gave one, by name.

        A server the session's breakers refuse counts as dead, and so does one that
        takes over ``MASTERS_WAIT`` to answer (a hung one must not stall a restart
        check), counted as failed.

        Raises:
            BackendError: no server answered.
        """
        gate = self._shards.gate
        asks = {
            asyncio.ensure_future(call(link)): name
            for name, link in self._named.items()
            if gate is None or not gate.refuses(name)
        }
        done: set[asyncio.Future[T]] = set()
        if asks:
            try:
                timeout = None if gate is None else MASTERS_WAIT
                done, _ = await asyncio.wait(asks, timeout=timeout)
            finally:
                for task in asks:
                    task.cancel()
        answers: dict[str, T] = {}
        for task, name in asks.items():
            error = task.exception() if task in done else None
            if task in done and error is None:
                answers[name] = task.result()
            elif gate is not None:
                why = error or f"no answer within {MASTERS_WAIT}s"
                gate.failed(name, BackendError(f"Redis failed: {why}", url=self.url))
        if not answers:
            raise BackendError("no server of the shards answers", url=self.url)
        return answers

    async def _masters(self) -> dict[str, tuple[bytes, bool]]:
        replies = await self._ask(lambda link: link.run_script(EPOCHS, [EPOCH_KEY], []))
        return {name: (reply[0], bool(reply[1])) for name, reply in replies.items()}

    # Each server keeps a copy of the epochs: a restart check needs only those that answer.

    async def _epoch_copies(self) -> list[dict[bytes, bytes]]:
        return list((await self._ask(lambda link: link.run(ops.hgetall(EPOCH_KEY)))).values())

    async def _record_epochs(self, epochs: dict[bytes, bytes]) -> None:
        await self._ask(lambda link: link.run(lambda c: c.hset(EPOCH_KEY, mapping=epochs)))

    async def _unlink_matching(self, node: str, prefix: bytes) -> None:
        link = self._named[node]
        cursor: bytes = b"0"
        while True:
            args = [cursor, glob_escape(prefix), SWEEP_BATCH]
            cursor = await link.run_script(UNLINK_SCANNED, [], args)
            await self._link.run(lambda c: c.expire(SWEEP_KEY, SWEEP_LOCK_SECONDS))
            if cursor == b"0":
                return


if TYPE_CHECKING:
    _conforms: type[RedisSide] = ShardedStore
