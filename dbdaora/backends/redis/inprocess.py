"""``memory://`` on the Redis side: ``InProcessRedis``, Redis semantics in dicts (``keyspace``).

The embedded default and the tests' stand-in for a server: hashes, sorted sets,
strings (flags and markers), TTL expiry. A command on a key of another type raises
``BadDataError``, as Redis answers WRONGTYPE. No operation awaits midway, so each is atomic as a
Lua script is; each write mirrors its script in ``scripts`` step by step. Set
``down = True`` to make every call fail as a lost Redis connection does. Not for
production across processes: each process would have its own.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.backends import geo, zset
from dbdaora.backends.redis.keyspace import Hash, Keyspace
from dbdaora.backends.redis.protocol import (
    EPOCH_KEY,
    SWEEP_KEY,
    Epochs,
    Found,
    HashValue,
    Members,
    Pairs,
    RedisSide,
)
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.lease import LEASE_SECONDS, NOT_FOUND


class InProcessRedis(Keyspace):
    """An in-process Redis stand-in for hashes, sorted sets and string markers.

    It holds only the data, as bytes and floats the way Redis keeps them, and the
    operations; like every store it must not know models, sessions or caches,
    and it keeps no policy of its own: each write takes its script's steps.
    """

    def __init__(
        self,
        url: str = "memory://",
        *,
        clock: Callable[[], float] = time.monotonic,
        autopipeline: bool = True,
    ) -> None:
        # autopipeline is accepted for a uniform constructor: in-process calls
        # have no round trips to batch.
        super().__init__(url, clock)
        self.instance = os.urandom(20).hex().encode()  # as Redis's run_id
        self.restored = False  # as Redis's INFO persistence: started with data

    # -- RedisSide -------------------------------------------------------------------

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        self._check()

    def track(self, listener: Invalidations) -> bool:
        return False  # in-process: no client tracking

    def untrack(self, listener: Invalidations) -> None:
        return None

    async def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        self._check()
        return dict(self._hash(key))

    async def hmget(self, key: bytes, fields: Sequence[bytes]) -> list[bytes | None]:
        self._check()
        value = self._hash(key)
        return [value.get(field) for field in fields]

    async def hgetall_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]:
        self._check()
        return [dict(self._hash(key)) for key in keys]

    async def hmget_many(
        self, keys: Sequence[bytes], fields: Sequence[bytes]
    ) -> list[list[bytes | None]]:
        self._check()
        return [[self._hash(key).get(field) for field in fields] for key in keys]

    async def exists(self, key: bytes) -> bool:
        self._check()
        return self._get(key) is not None

    async def hlen(self, key: bytes) -> int:
        self._check()
        return len(self._hash(key))

    async def get_strings(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self._check()
        return [self._string(key) for key in keys]

    async def lease(self, markers: Sequence[bytes], token: bytes) -> list[bytes | None]:
        self._check()
        # mirrors operations.lease, once a marker
        return [self._set_nx_get(marker, token) for marker in markers]

    def leases_on_read(self) -> bool:
        return False  # every call is in-process: nothing to save

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        self._check()
        # mirrors scripts.HGETALL_OR_LEASE
        found = self._hash(key)
        if found:
            return dict(found), None
        return {}, self._set_nx_get(marker, token)

    async def get_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[bytes | None, bytes | None]:
        self._check()
        # mirrors scripts.GET_OR_LEASE
        found = self._string(key)
        return (found, None) if found is not None else (None, self._set_nx_get(marker, token))

    async def fill_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        self._check()
        for key, marker, value in items:
            # mirrors scripts.FILL
            if self._string(marker) == token:
                self._delete(marker)
                self._set(key, value, ttl)

    async def put_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        self._check()
        for key, marker, value in items:
            # mirrors scripts.PUT_STRING
            if not self._unclaimed(key, marker, token):
                self._delete(marker)
                self._set(key, value, ttl)

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        self._check()
        for key, marker, value in items:
            # mirrors scripts.FILL
            if self._string(marker) != token:
                continue
            self._delete(marker)
            self._delete(key)
            self._hset(key, value)
            self._expire(key, ttl)

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        self._check()
        # mirrors scripts.FILL
        if self._string(marker) != token:
            return
        self._delete(marker)
        self._delete(key)
        self._zadd(key, members)
        self._expire(key, ttl)

    async def fill_missing(self, markers: Sequence[bytes], token: bytes, ttl: int | None) -> None:
        self._check()
        for marker in markers:
            # mirrors scripts.FILL_MISSING
            if self._string(marker) != token:
                continue
            self._set(marker, NOT_FOUND, ttl)

    def _unclaimed(self, key: bytes, marker: bytes, token: bytes) -> bool:
        """A write's first check (scripts._UNCLAIMED): where the marker no longer holds
        the writer's claim, drop the key and the marker and say so."""
        if self._string(marker) == token:
            return False
        self._delete(key)
        self._delete(marker)
        return True

    async def claim(self, markers: Sequence[bytes], token: bytes) -> None:
        self._check()
        for marker in markers:
            # mirrors operations.claim, once a marker
            self._set(marker, token, LEASE_SECONDS)

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        self._check()
        for key, marker, value in items:
            # mirrors scripts.PUT_HASH
            if self._unclaimed(key, marker, token):
                continue
            self._delete(key)
            self._delete(marker)
            self._hset(key, value)
            self._expire(key, ttl)

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        self._check()
        # mirrors scripts.PUT_SET
        if self._unclaimed(key, marker, token):
            return
        self._delete(key)
        self._delete(marker)
        self._zadd(key, members)
        if members:
            self._expire(key, ttl)

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
        self._check()
        # mirrors scripts.ADD_MEMBERS
        if self._unclaimed(key, marker, token):
            return
        self._delete(marker)
        if self._get(key) is None and not created:
            return
        self._zadd(key, members)
        current = self._zset(key)
        if max_size and len(current) > max_size:
            for member, _ in zset.ordered(current.items())[: len(current) - max_size]:
                del current[member]
        self._expire(key, ttl)

    async def remove_members(
        self, key: bytes, marker: bytes, members: Sequence[str], token: bytes
    ) -> None:
        self._check()
        # mirrors scripts.REMOVE_MEMBERS
        if self._unclaimed(key, marker, token):
            return
        self._zrem(key, members)
        self._delete(marker)

    async def delete(self, key: bytes, marker: bytes, token: bytes, ttl: int | None) -> None:
        self._check()
        # mirrors scripts.DELETE
        if self._unclaimed(key, marker, token):
            return
        self._delete(key)
        self._set(marker, NOT_FOUND, ttl)

    async def evict(self, keys: Sequence[bytes]) -> None:
        self._check()
        # mirrors operations.delete
        for key in keys:
            self._delete(key)

    def restart(self, snapshot: Any = None) -> None:
        """As a server restarted from ``snapshot`` (of ``snapshot()``), or empty: a new instance."""
        self._data, self._deadlines = copy.deepcopy(snapshot or ({}, {}))
        self.instance = os.urandom(20).hex().encode()
        self.restored = bool(self._data)

    def snapshot(self) -> Any:
        """What the store holds, for ``restart`` (an RDB, in short)."""
        return copy.deepcopy((self._data, self._deadlines))

    async def epochs(self) -> Epochs:
        self._check()
        # mirrors scripts.EPOCHS
        return Epochs(self.instance, dict(self._hash(EPOCH_KEY)), self.restored)

    async def sweep(
        self,
        prefixes: Sequence[bytes],
        instance: bytes,
        token: bytes,
        *,
        keep: Sequence[bytes] = (),
    ) -> bool:
        self._check()
        # mirrors scripts.SWEEP_START, SWEEP_STEP and SWEEP_END, in one go: nothing
        # in-process can run between them.
        if instance != self.instance or self._string(SWEEP_KEY) is not None:
            return False
        for key in self.keys():
            if key.startswith(tuple(prefixes)):
                self._delete(key)
        epochs = self._hash(EPOCH_KEY)
        recorded = dict.fromkeys([*prefixes, *keep], instance)
        self._set(EPOCH_KEY, Hash({**epochs, **recorded}), None)
        return True

    async def zrange(self, key: bytes, start: int, stop: int, *, reverse: bool) -> Pairs:
        self._check()
        return zset.by_rank(zset.ordered(self._zset(key).items(), reverse=reverse), start, stop)

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
        self._check()
        pairs = zset.ordered(self._zset(key).items(), reverse=reverse)
        return zset.by_score(pairs, low, high, reverse=reverse, offset=offset, count=count)

    async def zcard(self, key: bytes) -> int:
        self._check()
        return len(self._zset(key))

    async def geosearch(
        self,
        key: bytes,
        longitude: float,
        latitude: float,
        radius: float,
        unit: str,
        count: int | None,
    ) -> Found:
        self._check()
        return geo.search(self._zset(key).items(), longitude, latitude, radius, unit, count)


if TYPE_CHECKING:
    _conforms: type[RedisSide] = InProcessRedis
