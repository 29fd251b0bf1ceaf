"""``redis+cluster://``, ``rediss+cluster://``: the Redis side on a Redis Cluster.

The URL, redirects, retries and failures are the link's (``wire.cluster``);
this module holds the store operations, and the order that keeps them safe.

Why the writes are separate commands, and in which order
---------------------------------------------------------
An entity's key K (``<key_name>:<parts>``) and its marker M
(``<key_name>:not-found:<parts>``) hash to different slots, often on different
masters, so no MULTI or script can hold both: every command here touches one
key. The order of the commands keeps what the lease protocol of
``dbdaora.lease`` promises, from three rules:

1. A fill writes K only where K is absent, and only between two checks that M
   still holds its lease token: ``GET M`` equals the token, then the K script,
   then "delete M if it still holds the token". When that last check fails, a
   write came in between, and the fill deletes the K it wrote. Every write
   changes M (its claim) and tokens are unique, so a write whose claim lands
   after the first check is seen by the second.
2. Every write changes M first: its claim (``SET M token``) lands before its
   fallback write, and so before any of its K commands.
3. A write's last step touches K only under its claim: ``GET M`` equals its
   token, then its K command, then "delete M if it still holds the token"
   (``RELEASE``); when that release fails, something changed M in between, and
   the write deletes K. Where the first check fails, it deletes M, then K. A
   delete's M command is itself the check (``FILL_MISSING``: ``NOT_FOUND`` only
   if M holds the token, else M deleted), then it deletes K.

A flag's writes (``put_strings``: an add's ``1``, a delete's ``0``) take rule 3
as a hash's do, and its fills rule 1, its ``0`` filled as any value is.

What follows:

- Two writers, W's claim first. If W's step ran before the other's claim, the
  other's fallback write is later and its step comes after W's (as on one
  node). Otherwise the other's claim overwrote W's: W's first check or its
  release fails, and W deletes K after the check. The other's step writes K
  only if its own release succeeds; a failing step deletes M before it
  deletes K, so whichever order the two steps' commands land in, either a
  release fails and K is deleted after the last K write, or the failing DEL M
  came after the release and its DEL K after the K write. Redis ends holding
  no copy, as on one node. A value W wrote survives only if W's release
  succeeded, so no claim (or drop of M) landed between W's claim and its
  release: every writer whose fallback write came later claimed after that
  release, and its own step replaces or deletes K.
- A delete against a writer: the delete's ``NOT_FOUND`` lands only while M
  holds its claim, so no write claimed in between; a later claim overwrites
  ``NOT_FOUND``, and an earlier claimer fails its check and deletes M.
- A fill whose read is older than a write's commit: the write's claim ended
  the fill's lease, so the fill fails its first check or its second (the
  claim landed between them) and deletes its own K write, whichever side of
  the write's K command it landed on. A fill that leased after a write's step
  deleted M reads a fallback that already holds that write.
- The one gap is a fill between its two checks writing K where K was absent
  and a write's K command already ran (a member removed, a member added to a
  set Redis did not hold): the older set is visible until the fill's second
  check deletes it, microseconds later.

Failures keep the order's intent: a write whose claim failed does not try its
step, its keys are recorded for repair; a step that fails after a K command
leaves M holding the claim until it lapses, so no fill lands meanwhile, and
the repair deletes both.

Restarts: each master can restart on its own. The instance ``epochs`` reports
is the run_ids of the masters that answer, sorted and joined; a prefix's epoch
is current while each of them is among the run_ids it was swept under, so a
dead master stops no one, and a master that restarts (or a replica promoted in
its place) comes back with a new run_id that makes every prefix stale. A master
the session's breakers refuse counts as dead, and so does one that takes over
``MASTERS_WAIT`` to answer INFO (a hung one must not stall the check). ``sweep``
SCANs every answering master: a whole-cluster sweep for one master's restart,
simple, and cheap next to refilling. Its steps are separate commands (the lock, SCAN and UNLINK
per master, the epoch), checked against the instance before the epoch is
recorded; a master restarting mid-sweep fails a step or the final check.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.protocol import (
    EPOCH_KEY,
    SWEEP_BATCH,
    SWEEP_KEY,
    SWEEP_LOCK_SECONDS,
    Epochs,
    HashValue,
    Members,
    NodeGate,
    RedisSide,
    get_then_lease,
    hgetall_then_lease,
)
from dbdaora.backends.redis.scripts import (
    ADD_MEMBERS_NO_MARKER,
    FILL_ABSENT,
    FILL_MISSING,
    RELEASE,
    REPLACE,
    flat_hash,
    flat_members,
    glob_escape,
    restored_from_disk,
)
from dbdaora.backends.redis.single import SingleKeyOperations
from dbdaora.backends.redis.wire.cluster import ClusterLink
from dbdaora.backends.redis.wire.tracking import Invalidations
from dbdaora.backends.redis.wire.transport import Operation
from dbdaora.exceptions import BackendError

# The key the ping asks about; dbdaora's keys are a model's name and ':'-joined parts.
PING_KEY = b"dbdaora:ping"


class ClusterStore(SingleKeyOperations):
    """The Redis side on a Redis Cluster: every command touches one key.

    Everything that reads or touches one key is shared with the single-node
    store; the writes that span an entity's key and its marker are the ordered
    sequences the module docstring explains. Like every store, it holds only its
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

    # K and M hash to different slots: no script holds both.
    def leases_on_read(self) -> bool:
        return False

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        return await hgetall_then_lease(self, key, marker, token)

    async def get_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[bytes | None, bytes | None]:
        return await get_then_lease(self, key, marker, token)

    async def _fill(self, writes: Sequence[tuple[bytes, bytes, list[Any]]], token: bytes) -> None:
        """Write each (K, M, fill args) under rule 1 of the module docstring."""
        held = await self._link.run_all([ops.get(marker) for _, marker, _ in writes])
        writes = [write for write, value in zip(writes, held, strict=True) if value == token]
        if not writes:
            return
        wrote = await self._link.run_scripts(
            FILL_ABSENT, [([key], args) for key, _, args in writes]
        )
        kept = await self._link.run_scripts(
            RELEASE, [([marker], [token]) for _, marker, _ in writes]
        )
        overtaken = [
            key
            for (key, _, _), written, still in zip(writes, wrote, kept, strict=True)
            if written and not still
        ]
        if overtaken:
            await self.evict(overtaken)

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._fill(
            [(key, marker, [ttl or 0, "HSET", *flat_hash(value)]) for key, marker, value in items],
            token,
        )

    async def fill_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        await self._fill(
            [(key, marker, [ttl or 0, "SET", value]) for key, marker, value in items], token
        )

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        await self._fill([(key, marker, [ttl or 0, "ZADD", *flat_members(members)])], token)

    async def _under_claim(
        self,
        entries: Sequence[tuple[bytes, bytes]],
        token: bytes,
        write: Callable[[list[int]], Awaitable[object]],
    ) -> None:
        """A write's last step on each (K, M) under the writer's claim (rule 3 above).

        ``write`` sends the K commands of the entries (by index) whose M still holds
        ``token``; each such M is then released if it still does, and where it no
        longer does, K is dropped. Where M no longer held ``token`` at the first
        check, M is dropped, then K.
        """
        held = await self._link.run_all([ops.get(marker) for _, marker in entries])
        mine = [i for i, value in enumerate(held) if value == token]
        lost = [entry for entry, value in zip(entries, held, strict=True) if value != token]
        if lost:
            await self.evict([marker for _, marker in lost])
            await self.evict([key for key, _ in lost])
        if not mine:
            return
        await write(mine)
        kept = await self._link.run_scripts(RELEASE, [([entries[i][1]], [token]) for i in mine])
        overtaken = [entries[i][0] for i, still in zip(mine, kept, strict=True) if not still]
        if overtaken:
            await self.evict(overtaken)

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        def write(mine: list[int]) -> Awaitable[object]:
            return self._link.run_scripts(
                REPLACE,
                [([items[i][0]], [ttl or 0, "HSET", *flat_hash(items[i][2])]) for i in mine],
            )

        await self._under_claim([(key, marker) for key, marker, _ in items], token, write)

    async def put_strings(
        self, items: Sequence[tuple[bytes, bytes, bytes]], token: bytes, ttl: int | None
    ) -> None:
        def write(mine: list[int]) -> Awaitable[object]:
            return self._link.run_scripts(
                REPLACE, [([items[i][0]], [ttl or 0, "SET", items[i][2]]) for i in mine]
            )

        await self._under_claim([(key, marker) for key, marker, _ in items], token, write)

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        args = [ttl or 0, "ZADD", *flat_members(members)]
        await self._under_claim(
            [(key, marker)], token, lambda _: self._link.run_scripts(REPLACE, [([key], args)])
        )

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
        args = [ttl or 0, max_size or 0, int(created), *flat_members(members)]
        await self._under_claim(
            [(key, marker)],
            token,
            lambda _: self._link.run_scripts(ADD_MEMBERS_NO_MARKER, [([key], args)]),
        )

    async def remove_members(
        self, key: bytes, marker: bytes, members: Sequence[str], token: bytes
    ) -> None:
        async def write(_: list[int]) -> None:
            if members:  # ZREM needs a member
                await self._link.run(ops.zrem(key, members))

        await self._under_claim([(key, marker)], token, write)

    async def evict(self, keys: Sequence[bytes]) -> None:
        # One DEL a key: keys of several slots cannot share a command.
        await self._link.run_all([ops.delete(key) for key in keys])

    async def delete(self, key: bytes, marker: bytes, token: bytes, ttl: int | None) -> None:
        # M first (NOT_FOUND only under the claim, else deleted), then K: rule 3.
        (marked,) = await self._link.run_scripts(FILL_MISSING, [([marker], [token, ttl or 0])])
        if not marked:
            await self.evict([marker])
        await self.evict([key])

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

    async def epochs(self) -> Epochs:
        # An epoch is the set of run_ids swept under; it stays current while every
        # master that answers is in it (a dead master comes back with a new one).
        masters = (await self._masters()).values()
        run_ids = {run_id for run_id, _ in masters}
        instance = b",".join(sorted(run_ids))
        epochs: dict[bytes, bytes] = await self._link.run(ops.hgetall(EPOCH_KEY))
        swept = {
            prefix: instance if run_ids <= set(swept.split(b",")) else swept
            for prefix, swept in epochs.items()
        }
        return Epochs(instance, swept, any(restored for _, restored in masters))

    async def sweep(
        self,
        prefixes: Sequence[bytes],
        instance: bytes,
        token: bytes,
        *,
        keep: Sequence[bytes] = (),
    ) -> bool:
        masters = await self._masters()
        if b",".join(sorted({run_id for run_id, _ in masters.values()})) != instance:
            return False
        if not await self._link.run(
            lambda c: c.set(SWEEP_KEY, token, nx=True, ex=SWEEP_LOCK_SECONDS)
        ):
            return False
        for node in masters:
            for prefix in prefixes:

                async def scan(client: Any, node: Any = node, prefix: bytes = prefix) -> None:
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
        if (
            set((await self._masters()).values()) != set(masters.values())
            or await self._link.run(ops.get(SWEEP_KEY)) != token
        ):
            return False
        epochs = dict.fromkeys([*prefixes, *keep], instance)
        if epochs:
            await self._link.run(lambda c: c.hset(EPOCH_KEY, mapping=epochs))
        await self.evict([SWEEP_KEY])
        return True


if TYPE_CHECKING:
    _conforms: type[RedisSide] = ClusterStore
