"""What every Redis-side store implements: ``RedisSide``.

The Redis side holds hashes, sorted sets, flags (strings) and not-found markers, in operations
that each map to one round trip. It takes already-encoded keys and values and
knows nothing of models, sessions, caches or breakers. The writes keep the lease
protocol of ``dbdaora.lease``; each docstring below says which step it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.exceptions import BackendError

HashValue = Mapping[bytes, str | bytes]
Members = Sequence[tuple[str, float]]
Pairs = list[tuple[bytes, float]]
Found = list[tuple[bytes, float, tuple[float, float]]]
"""GEOSEARCH's answer: each member, its distance, its (longitude, latitude)."""

EPOCH_KEY = b"dbdaora:epoch"
"""A hash: for each key prefix, the server instance its keys were last swept under."""

SWEEP_KEY = b"dbdaora:sweeping"
"""The sweep lock: the token of the one session sweeping, expiring by itself."""

SWEEP_LOCK_SECONDS = 10
"""How long the sweep lock holds without a batch renewing it (a sweeper that died)."""

SWEEP_BATCH = 1000
"""Keys one SCAN step of a sweep asks for (its COUNT)."""


class Epochs(NamedTuple):
    """What ``RedisSide.epochs`` found: the server's instance and the prefixes' epochs."""

    instance: bytes
    """Redis's ``run_id`` (the masters' run_ids, joined, on a cluster)."""

    swept: dict[bytes, bytes]
    """``EPOCH_KEY``'s hash: each prefix's instance when it was last swept."""

    restored: bool
    """Whether the server's data may predate it: it loaded keys from an RDB at
    startup, or appends an AOF (whose loading Redis does not count), or is a
    replica promoted to master (``second_repl_offset`` set), or is too old (Redis
    < 7) to say. A prefix with no epoch may then hold keys from a snapshot taken,
    or replicated, before any session recorded one."""


class RedisSide(Protocol):
    """The Redis side. Every failure to reach the store raises ``BackendError``.

    An operation on a key that holds another type than its command's (a string
    where a hash belongs, say) raises ``BadDataError``, as Redis's WRONGTYPE.
    """

    url: str

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """One cheap round trip (PING); ``BackendError`` when the store does not answer.

        The session's breaker sends it while open, to close as soon as Redis answers.
        """
        ...

    def track(self, listener: Invalidations) -> bool:
        """Have Redis tell ``listener`` when a key a read here answered changes
        (client tracking, see ``wire.tracking``); False where this store cannot."""
        ...

    def untrack(self, listener: Invalidations) -> None: ...

    async def hgetall(self, key: bytes) -> dict[bytes, bytes]: ...

    async def hmget(self, key: bytes, fields: Sequence[bytes]) -> list[bytes | None]: ...

    async def hgetall_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]: ...

    async def hmget_many(
        self, keys: Sequence[bytes], fields: Sequence[bytes]
    ) -> list[list[bytes | None]]: ...

    async def exists(self, key: bytes) -> bool: ...

    async def hlen(self, key: bytes) -> int:
        """HLEN: how many fields the hash at ``key`` has, 0 where there is none.

        Unlike ``exists``, it tells a hash from a key of another type.
        """
        ...

    async def lease(self, markers: Sequence[bytes], token: bytes) -> list[bytes | None]:
        """Set each marker to ``token`` where it is absent; return the values before."""
        ...

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        """A whole hash, or on a miss what ``lease`` answers for its marker, in one call.

        A hit is ``(hash, None)``; a miss is ``({}, before)``, where ``before`` is
        the marker's value before the call: None when the call set it to
        ``token``, so that the caller holds the fill lease. This is the get's first
        round trip (Redis runs it as one script), so that a read-through needs
        only the fallback read and the fill after it.
        """
        ...

    def leases_on_read(self) -> bool:
        """Whether a whole read should go through ``hgetall_or_lease`` now.

        False where that call is two round trips anyway, or where batching
        makes the plain read the better deal; the caller then reads with
        ``hgetall`` and takes leases for its misses with ``lease``.
        """
        ...

    async def get_strings(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """GET of each key, in order, None where there is none (a flag's ``1`` or ``0``)."""
        ...

    async def get_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[bytes | None, bytes | None]:
        """A string, or on a miss what ``lease`` answers for its marker, in one call.

        A hit is ``(value, None)``; a miss is ``(None, before)``, as
        ``hgetall_or_lease`` answers for a hash.
        """
        ...

    async def fill_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        """Write each (key, marker, value) whose marker still holds ``token``, and drop the
        marker: a flag's fill, ``1`` where the fallback has the record, ``0`` where not.

        As ``fill_hashes``, the cluster fills only absent keys.
        """
        ...

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        """Write each (key, marker, hash) whose marker still holds ``token``, and drop the marker.

        A dbdaora write always changes the marker, so a key found while the
        lease holds was written by someone else (a 0.27 writer, a hand-written
        HSET): one node replaces it; the cluster, which must fill only absent
        keys to keep its single-key ordering sound, leaves it as it is.
        """
        ...

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None: ...

    async def fill_missing(self, markers: Sequence[bytes], token: bytes, ttl: int | None) -> None:
        """Turn each marker still holding ``token`` into a not-found marker."""
        ...

    async def claim(self, markers: Sequence[bytes], token: bytes) -> None:
        """A write's first step, before its fallback write: set each marker to the
        writer's ``token``, whatever it held (ending readers' leases and earlier
        writers' claims)."""
        ...

    # Each write below is a write's last step, after its fallback write, under the
    # claim: where the marker still holds ``token`` it writes; where it does not
    # (another writer claimed since, or a read leased after the claim lapsed), it
    # drops the key and the marker, and the next read fills from the fallback.

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        """Replace each (key, marker, hash) under the claim: the new hash, its TTL, no marker."""
        ...

    async def put_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        """Set each (key, marker, value) under the claim: the value, its TTL, no marker
        (a flag's add writes ``1``, its delete ``0``)."""
        ...

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        """Replace the whole set with ``members`` under the claim: its TTL, no marker."""
        ...

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
        """Under the claim, add to the set where Redis holds it; drop the marker.

        Where Redis does not hold the set, create it from ``members`` only when the
        writer's fallback write created the set (``created``); otherwise leave it
        to the next read to fill whole.
        """
        ...

    async def remove_members(
        self, key: bytes, marker: bytes, members: Sequence[str], token: bytes
    ) -> None:
        """Under the claim, remove members and drop the marker."""
        ...

    async def delete(self, key: bytes, marker: bytes, token: bytes, ttl: int | None) -> None:
        """Under the claim, drop the key and set its not-found marker."""
        ...

    async def evict(self, keys: Sequence[bytes]) -> None: ...

    async def zrange(self, key: bytes, start: int, stop: int, *, reverse: bool) -> Pairs: ...

    async def zrange_by_score(
        self,
        key: bytes,
        low: float,
        high: float,
        *,
        reverse: bool,
        offset: int,
        count: int | None,
    ) -> Pairs: ...

    async def zcard(self, key: bytes) -> int: ...

    async def geosearch(
        self,
        key: bytes,
        longitude: float,
        latitude: float,
        radius: float,
        unit: str,
        count: int | None,
    ) -> Found:
        """GEOSEARCH key FROMLONLAT BYRADIUS ASC [COUNT] WITHDIST WITHCOORD: the members
        within ``radius`` (in ``unit``) of the point, nearest first, distances in ``unit``.

        A geospatial set is a sorted set whose scores are GEOADD's geohashes
        (``backends.geo``): its writes are the sorted-set ones above.
        """
        ...

    async def epochs(self) -> Epochs:
        """The server's instance, ``EPOCH_KEY``'s hash and whether it restored data.

        One round trip on one node. The instance changes whenever a server
        restarts or another takes its place. A prefix whose epoch is not the
        instance may hold keys the server loaded from a snapshot or an AOF, older
        than acknowledged writes; so may a prefix with no epoch, when ``restored``.
        """
        ...

    async def sweep(
        self,
        prefixes: Sequence[bytes],
        instance: bytes,
        token: bytes,
        *,
        keep: Sequence[bytes] = (),
    ) -> bool:
        """Delete every key under ``prefixes``, then record them swept under ``instance``.

        Only one sweeper at a time: it takes ``SWEEP_KEY`` with ``token`` (NX,
        ``SWEEP_LOCK_SECONDS``, renewed each batch), SCANs and UNLINKs each
        prefix, sets each prefix's epoch to ``instance`` and releases the lock.
        The prefixes in ``keep`` get their epoch too, their keys left as they are
        (prefixes that had none: their keys predate no restart dbdaora knew of).
        Returns False, having recorded nothing, when another holds the lock or
        the server is no longer ``instance`` (it restarted again).
        """
        ...


async def hgetall_then_lease(
    store: RedisSide, key: bytes, marker: bytes, token: bytes
) -> tuple[dict[bytes, bytes], bytes | None]:
    """``hgetall_or_lease`` as two calls, for a store that cannot make it one."""
    found = await store.hgetall(key)
    if found:
        return found, None
    (before,) = await store.lease([marker], token)
    return {}, before


async def get_then_lease(
    store: RedisSide, key: bytes, marker: bytes, token: bytes
) -> tuple[bytes | None, bytes | None]:
    """``get_or_lease`` as two calls, for a store that cannot make it one."""
    (found,) = await store.get_strings([key])
    if found is not None:
        return found, None
    (before,) = await store.lease([marker], token)
    return None, before


class NodeGate(Protocol):
    """What a cluster link asks about one master around each command it sends there.

    The session's per-node breakers implement it (``session.nodes``): a link
    holds no breaker, it only reports. Nodes are named ``host:port``.
    """

    def check(self, node: str) -> None:
        """Before sending: raise ``NodeUnavailableError`` where ``node`` is refused."""
        ...

    def refuses(self, node: str) -> bool:
        """Whether ``check`` would refuse ``node`` now."""
        ...

    def answered(self, node: str) -> None:
        """``node`` answered a command."""
        ...

    def failed(self, node: str, error: BackendError, *, lost: bool = False) -> BackendError:
        """``node`` failed with ``error`` (counted); the error to raise. ``lost``: the
        connection broke (the master may have restarted), rather than timed out."""
        ...

    def expired(self, node: str) -> BackendError | None:
        """A command to ``node`` was cancelled: the error to raise instead when the
        cancel was the call's deadline (counted as a failure), else None."""
        ...

    def mapped(self, nodes: Sequence[str]) -> None:
        """The masters of the first slot map read; any other seen later is new."""
        ...


@runtime_checkable
class NodeRouting(Protocol):
    """A Redis side of several masters, each with its own slots (the cluster).

    The session keeps a breaker per master: the store routes each key to its
    master's name (``host:port``) from the slot map it holds, and reports each
    master's answers and failures to the session's ``gate``.
    """

    def watch_nodes(self, gate: NodeGate) -> None:
        """Report to ``gate`` around every command to one master, and ask it first.

        A store has one gate: sessions that share a store share the last one's.
        """
        ...

    def node_of(self, key: bytes) -> str | None:
        """The master serving ``key``'s slot, no I/O; None where not known yet."""
        ...

    async def ping_node(self, node: str) -> None:
        """One cheap round trip to ``node``; ``BackendError`` when it does not answer."""
        ...
