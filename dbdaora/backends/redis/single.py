"""``redis://``, ``rediss://``, ``unix://``: the Redis side on one server.

Every operation is one round trip. Writes that touch an entity's key and its
not-found marker together run as one script each (see ``scripts``), so each is
atomic and still a single command that can share a round trip with others.
``SingleKeyOperations`` holds the operations whose every command touches one key;
``ClusterStore`` shares them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.protocol import (
    EPOCH_KEY,
    SWEEP_BATCH,
    SWEEP_KEY,
    SWEEP_LOCK_SECONDS,
    Epochs,
    Found,
    HashValue,
    Members,
    Pairs,
    RedisSide,
)
from dbdaora.backends.redis.scripts import (
    ADD_MEMBERS,
    DELETE,
    EPOCHS,
    FILL,
    FILL_MISSING,
    GET_OR_LEASE,
    HGETALL_OR_LEASE,
    PUT_HASH,
    PUT_SET,
    PUT_STRING,
    REMOVE_MEMBERS,
    SWEEP_END,
    SWEEP_START,
    SWEEP_STEP,
    flat_hash,
    flat_members,
    glob_escape,
)
from dbdaora.backends.redis.wire.link import Link
from dbdaora.backends.redis.wire.node import NodeLink
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.backends.redis.wire.transport import Operation, alone


class SingleKeyOperations:
    """The Redis-side operations whose every command touches one key, on any link.

    They are the same on one node and on a cluster. A store holds only its
    operations and its link; it must not hold connections, event loops, driver
    errors or retries (the link's), nor know models or sessions.
    """

    def __init__(self, link: Link, *, autopipeline: bool) -> None:
        self.url = link.url
        self.autopipeline = autopipeline
        self._link = link

    async def close(self) -> None:
        await self._link.close()

    async def ping(self) -> None:
        await self._link.run(ops.ping())

    def track(self, listener: Invalidations) -> bool:
        return False  # tracking runs on a single node's multiplexed connection only

    def untrack(self, listener: Invalidations) -> None:
        return None

    # The reads whose answers a session cache keeps; a tracking store has Redis track them.
    def _read(self, operation: Operation) -> Coroutine[Any, Any, Any]:
        return self._link.run(operation)

    def _read_all(self, operations: list[Operation]) -> Coroutine[Any, Any, list[Any]]:
        return self._link.run_all(operations)

    # The two reads of a get return the link's coroutine: no frame of their own.
    def hgetall(self, key: bytes) -> Coroutine[Any, Any, dict[bytes, bytes]]:
        return self._read(ops.hgetall(key))

    def hmget(self, key: bytes, fields: Sequence[bytes]) -> Coroutine[Any, Any, list[bytes | None]]:
        return self._read(ops.hmget(key, fields))

    async def hgetall_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]:
        return await self._read_all([ops.hgetall(key) for key in keys])

    async def hmget_many(
        self, keys: Sequence[bytes], fields: Sequence[bytes]
    ) -> list[list[bytes | None]]:
        return await self._read_all([ops.hmget(key, fields) for key in keys])

    async def exists(self, key: bytes) -> bool:
        return bool(await self._link.run(ops.exists(key)))

    async def get_strings(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return await self._read_all([ops.get(key) for key in keys])

    async def hlen(self, key: bytes) -> int:
        return int(await self._link.run(ops.hlen(key)))

    async def lease(self, markers: Sequence[bytes], token: bytes) -> list[bytes | None]:
        return await self._link.run_all([ops.lease(marker, token) for marker in markers])

    async def claim(self, markers: Sequence[bytes], token: bytes) -> None:
        await self._link.run_all([ops.claim(marker, token) for marker in markers])

    async def fill_missing(self, markers: Sequence[bytes], token: bytes, ttl: int | None) -> None:
        await self._link.run_scripts(
            FILL_MISSING, [([marker], [token, ttl or 0]) for marker in markers]
        )

    async def zrange(self, key: bytes, start: int, stop: int, *, reverse: bool) -> Pairs:
        result: Pairs = await self._read(ops.zrange(key, start, stop, reverse=reverse))
        return result

    async def zrange_by_score(
        self,
        key: bytes,
        low: float,
        high: float,
        *,
        reverse: bool,
        offset: int,
        count: int | None,
    ) -> Pairs:
        operation = ops.zrange_by_score(key, low, high, reverse=reverse, offset=offset, count=count)
        result: Pairs = await self._read(operation)
        return result

    async def zcard(self, key: bytes) -> int:
        return int(await self._link.run(ops.zcard(key)))

    async def geosearch(
        self,
        key: bytes,
        longitude: float,
        latitude: float,
        radius: float,
        unit: str,
        count: int | None,
    ) -> Found:
        reply = await self._read(ops.geosearch(key, longitude, latitude, radius, unit, count))
        return [
            (member, float(dist), (float(lon), float(lat))) for member, dist, (lon, lat) in reply
        ]


class RedisStore(SingleKeyOperations):
    """The Redis side on one server: each write of K and M is one script.

    Like every store, it holds only its operations and its link (``NodeLink``).

    Args:
        url: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``unix://``.
        autopipeline: batch the commands of one event-loop iteration into one
            round trip (the default).
        options: redis-py client options, over the URL's and dbdaora's defaults.

    Raises:
        ConfigurationError: the URL does not parse.
    """

    _node: NodeLink

    def __init__(self, url: str, *, autopipeline: bool = True, **options: Any) -> None:
        self._node = NodeLink(url, autopipeline=autopipeline, options=options)
        super().__init__(self._node, autopipeline=autopipeline)

    def track(self, listener: Invalidations) -> bool:
        return self._node.track(listener)

    def untrack(self, listener: Invalidations) -> None:
        self._node.untrack(listener)

    def _read(self, operation: Operation) -> Coroutine[Any, Any, Any]:
        return self._node.run(operation, cached=True)

    def _read_all(self, operations: list[Operation]) -> Coroutine[Any, Any, list[Any]]:
        return self._node.run_all(operations, cached=True)

    def leases_on_read(self) -> bool:
        # Batched with other callers, a get shares its round trip, and the plain
        # HGETALL costs Redis a sixth of the script (0.9 µs against 5.8 µs a call
        # in INFO commandstats): under load, Redis time is what is short. A caller
        # alone pays each round trip itself: one less on a miss is worth it.
        return not self.autopipeline or alone(asyncio.get_running_loop())

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        reply: list[bytes] = await self._node.run_script(
            HGETALL_OR_LEASE, [key, marker], [token], cached=True
        )
        if len(reply) == 1:
            return {}, reply[0]
        items = iter(reply)
        return dict(zip(items, items, strict=True)), None

    async def get_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[bytes | None, bytes | None]:
        reply: list[bytes | None] = await self._node.run_script(
            GET_OR_LEASE, [key, marker], [token], cached=True
        )
        if len(reply) == 1:
            return reply[0], None
        return None, reply[1] if reply else None

    async def fill_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        await self._link.run_scripts(
            FILL, [([key, marker], [token, ttl or 0, "SET", value]) for key, marker, value in items]
        )

    async def put_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        await self._link.run_scripts(
            PUT_STRING, [([key, marker], [token, ttl or 0, value]) for key, marker, value in items]
        )

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._link.run_scripts(
            FILL,
            [
                ([key, marker], [token, ttl or 0, "HSET", *flat_hash(value)])
                for key, marker, value in items
            ],
        )

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        await self._link.run_scripts(
            FILL, [([key, marker], [token, ttl or 0, "ZADD", *flat_members(members)])]
        )

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._link.run_scripts(
            PUT_HASH,
            [([key, marker], [token, ttl or 0, *flat_hash(value)]) for key, marker, value in items],
        )

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        args = [token, ttl or 0, *flat_members(members)]
        await self._link.run_scripts(PUT_SET, [([key, marker], args)])

    async def add_members(
        self,
        key: bytes,
        marker: bytes,
        members: Members,
        ttl: int | None,
        max_size: int | None,
        *,
        token: bytes,
        created: bool,
    ) -> None:
        args = [token, ttl or 0, max_size or 0, int(created), *flat_members(members)]
        await self._link.run_scripts(ADD_MEMBERS, [([key, marker], args)])

    async def remove_members(
        self, key: bytes, marker: bytes, members: Sequence[str], token: bytes
    ) -> None:
        await self._link.run_scripts(REMOVE_MEMBERS, [([key, marker], [token, *members])])

    async def delete(self, key: bytes, marker: bytes, token: bytes, ttl: int | None) -> None:
        await self._link.run_scripts(DELETE, [([key, marker], [token, ttl or 0])])

    async def evict(self, keys: Sequence[bytes]) -> None:
        if keys:  # DEL needs a key
            await self._link.run(ops.delete(*keys))

    async def epochs(self) -> Epochs:
        instance, restored, pairs = await self._link.run_script(EPOCHS, [EPOCH_KEY], [])
        items = iter(pairs)
        return Epochs(instance, dict(zip(items, items, strict=True)), bool(restored))

    async def sweep(
        self,
        prefixes: Sequence[bytes],
        instance: bytes,
        token: bytes,
        *,
        keep: Sequence[bytes] = (),
    ) -> bool:
        lock = [SWEEP_KEY]
        if not await self._link.run_script(
            SWEEP_START, lock, [token, instance, SWEEP_LOCK_SECONDS]
        ):
            return False
        for prefix in prefixes:
            cursor: bytes | None = b"0"
            while True:
                args = [token, instance, cursor, glob_escape(prefix), SWEEP_BATCH]
                cursor = await self._link.run_script(SWEEP_STEP, lock, [*args, SWEEP_LOCK_SECONDS])
                if cursor is None:
                    return False
                if cursor == b"0":
                    break
        done = await self._link.run_script(
            SWEEP_END, [*lock, EPOCH_KEY], [token, instance, *prefixes, *keep]
        )
        return bool(done)


if TYPE_CHECKING:
    _conforms: type[RedisSide] = RedisStore
