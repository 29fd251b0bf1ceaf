"""The Redis side over servers that each hold some keys: the ordered single-key writes.

``cluster.ClusterStore`` (a Redis Cluster) and ``shards.ShardedStore`` (dbdaora
0.27's client-side hash ring) share them: each knows only how to reach the
server of a key (its link) and how to list its servers (``_masters``).

Why the writes are separate commands, and in which order
---------------------------------------------------------
An entity's key K (``<key_name>:<parts>``) and its marker M
(``<key_name>:not-found:<parts>``) may live on different servers (a cluster's
slots, a client-side shard ring), so no MULTI or script can hold both: every
command here touches one key. The order of the commands keeps what the lease protocol of
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

Restarts: each server can restart on its own. The instance ``epochs`` reports
is the run_ids of the servers that answer, sorted and joined; a prefix's epoch
is current while each of them is among the run_ids it was swept under, so a
dead server stops no one, and one that restarts (or a replica promoted in its
place) comes back with a new run_id that makes every prefix stale. ``sweep``
SCANs every answering server: a sweep of all for one server's restart, simple,
and cheap next to refilling. Its steps are separate commands (the lock, SCAN
and UNLINK per server, the epoch), checked against the instance before the
epoch is recorded; a server restarting mid-sweep fails a step or the final check.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from dbdaora.backends.redis import operations as ops
from dbdaora.backends.redis.protocol import (
    EPOCH_KEY,
    SWEEP_KEY,
    SWEEP_LOCK_SECONDS,
    Epochs,
    HashValue,
    Members,
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
)
from dbdaora.backends.redis.single import SingleKeyOperations


class OrderedWrites(SingleKeyOperations, ABC):
    """The operations of a store whose entity key and marker may sit on two servers.

    Every command touches one key, in the order the module docstring proves safe.
    A subclass gives its link and the two things that differ: its servers, each
    with its run_id (``_masters``), and a sweep's SCAN and UNLINK on one of them
    (``_unlink_matching``).
    """

    @abstractmethod
    async def _masters(self) -> dict[str, tuple[bytes, bool]]:
        """Each server that answers, by name, with its run_id and whether its data
        may predate it (``restored_from_disk``); a dead one holds nothing to serve.

        Raises:
            BackendError: no server answers.
        """

    @abstractmethod
    async def _unlink_matching(self, node: str, prefix: bytes) -> None:
        """UNLINK every key under ``prefix`` on server ``node``, renewing the sweep lock."""

    # K and M may live on different servers: no script holds both.
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

    async def epochs(self) -> Epochs:
        # An epoch is the set of run_ids swept under; it stays current while every
        # server that answers is in it (a dead one comes back with a new run_id).
        # A copy that says a prefix is current was written by a sweep under every
        # run_id that answers now, so any copy that says so is believed.
        masters = (await self._masters()).values()
        run_ids = {run_id for run_id, _ in masters}
        instance = b",".join(sorted(run_ids))
        swept: dict[bytes, bytes] = {}
        for copy in await self._epoch_copies():
            for prefix, value in copy.items():
                if run_ids <= set(value.split(b",")):
                    swept[prefix] = instance
                else:
                    swept.setdefault(prefix, value)
        return Epochs(instance, swept, any(restored for _, restored in masters))

    async def _epoch_copies(self) -> list[dict[bytes, bytes]]:
        """Each copy of ``EPOCH_KEY``'s hash that can be read: a cluster keeps one."""
        copy: dict[bytes, bytes] = await self._link.run(ops.hgetall(EPOCH_KEY))
        return [copy]

    async def _record_epochs(self, epochs: dict[bytes, bytes]) -> None:
        """Set these prefixes' epochs in ``EPOCH_KEY`` (in each copy of it)."""
        await self._link.run(lambda c: c.hset(EPOCH_KEY, mapping=epochs))

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
                await self._unlink_matching(node, prefix)
        if (
            set((await self._masters()).values()) != set(masters.values())
            or await self._link.run(ops.get(SWEEP_KEY)) != token
        ):
            return False
        epochs = dict.fromkeys([*prefixes, *keep], instance)
        if epochs:
            await self._record_epochs(epochs)
        await self.evict([SWEEP_KEY])
        return True
