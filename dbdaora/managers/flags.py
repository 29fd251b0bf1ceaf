"""Flag models: one Redis string per key, ``1`` while set, ``0`` remembering a miss.

dbdaora 0.27's boolean layout, so that either version reads what the other
wrote; the fallback holds one record per set flag. How the miss in the key
keeps the lease protocol's promises is in ``dbdaora.lease``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from dbdaora.exceptions import BackendError, EntityNotFoundError, ValidationError
from dbdaora.lease import lease_token
from dbdaora.managers.base import CORRUPT, DOWN, MISS, M, Unanswered
from dbdaora.managers.read_through import ReadThrough
from dbdaora.meta.records import FLAG_MISSING, FLAG_SET
from dbdaora.session.cache import NOT_FOUND, NOTHING, WHOLE

Answer = bool | Unanswered
"""What Redis said of one flag: set, not (``0``), or no answer (``MISS``, ...)."""


class FlagManager(ReadThrough[M]):
    """``Model.objects`` of a flag model (a ``FlagModel``)."""

    __slots__ = ()

    async def add(self, *entities: M) -> None:
        """Set flags: their markers claimed, the fallback, then ``1`` in Redis under the claim.

        Raises:
            ValidationError: an entity is not of this model, or its flag is not True.
            BackendError: the fallback failed; as ``HashManager.add`` says.
        """
        meta = self.meta
        names = []
        for entity in entities:
            meta.check_instance(entity)
            meta.check_flag(entity)
            names.append(meta.instance_key_text(entity))
        if not names:
            return
        session = self.session
        token, claimed = await self._claim([meta.marker_key(name) for name in names])
        try:
            await session.durable(session.fallback.put_many, meta, names, entities)
        except BackendError as exc:
            await self._drop_copies(exc.unknown.intersection(names))
            done = [name for name in names if name in exc.written - exc.unknown]
            if done:
                await self._write(done, FLAG_SET, token, claimed)
            raise
        await self._write(names, FLAG_SET, token, claimed)
        if session.cache is not None:
            for name, entity in zip(names, entities, strict=True):
                await session.cache.replace(meta.model, name, meta.copy(entity))

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Clear a flag: its marker claimed, the fallback record deleted, then ``0`` in
        Redis under the claim (the remembered miss, with the TTL).

        Raises:
            BackendError: the fallback failed; the Redis copy is deleted only where
                the outcome is unknown (``OutcomeUnknownError``).
        """
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        token, claimed = await self._claim([meta.marker_key(name)])
        try:
            await session.durable(session.fallback.delete, meta, name)
        except BackendError as exc:
            await self._drop_copies(exc.unknown)
            raise
        await self._write([name], FLAG_MISSING, token, claimed)
        if session.cache is not None:
            await session.cache.deleted(meta.model, name)

    async def _write(self, names: list[str], value: bytes, token: bytes, claimed: bool) -> None:
        """The Redis half of a write the fallback has committed: ``value`` under the claim."""
        meta, session = self.meta, self.session
        session.stats_for(meta).fallback_writes += len(names)
        session.overtake(meta.model, names)
        items = [(meta.redis_key(name), meta.marker_key(name), value) for name in names]
        keys = [key for key, marker, _ in items for key in (key, marker)]
        memory, ttl = session.memory, session.ttl(meta)
        await self._under_claim(claimed, keys, memory.put_strings, items, token, ttl)

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the flag is set, in Redis or (read through) in the fallback.

        Raises:
            ValidationError: bad key parts (before any I/O).
            BackendError: the fallback failed when it had to be read.
        """
        meta = self.meta
        (found,) = await self._flags([meta.key_parts(parts, named)])
        return found

    async def get(self, *parts: Any, **named: Any) -> M:
        """The entity of a set flag (its flag True).

        Raises:
            EntityNotFoundError: the flag is not set.
            ValidationError: bad key parts (before any I/O).
            BackendError: the fallback failed when it had to be read.
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        if not (await self._flags([key_parts]))[0]:
            raise EntityNotFoundError(meta.name, key_parts)
        entity: M = meta.flag_entity(key_parts)
        return entity

    async def exists_many(self, ids: Iterable[Any]) -> list[bool]:
        """Whether each flag is set, in the order asked.

        Each id is a key value, or a tuple of key parts for a composite key.
        """
        return await self._flags(self._ids(ids))

    async def get_many(self, ids: Iterable[Any]) -> list[M]:
        """The entities of the set flags among ``ids``, in the order asked."""
        parts_list = self._ids(ids)
        found = await self._flags(parts_list)
        meta = self.meta
        return [
            meta.flag_entity(parts) for parts, set_ in zip(parts_list, found, strict=True) if set_
        ]

    def _ids(self, ids: Iterable[Any]) -> list[tuple[Any, ...]]:
        if isinstance(ids, (str, bytes)):
            meta = self.meta
            raise ValidationError(
                f"{meta.name}: takes a collection of ids, got {ids!r}; for one id, use "
                "exists or get",
                model=meta.name,
                value=ids,
            )
        return [self._parts_of(entity_id) for entity_id in ids]

    async def _flags(self, parts_list: Sequence[tuple[Any, ...]]) -> list[bool]:
        """Whether each flag is set: the cache, then Redis, then the fallback for misses."""
        meta, session = self.meta, self.session
        names = [meta.key_text(parts) for parts in parts_list]
        found: list[Answer] = [MISS] * len(names)
        cache = session.cache
        ticket = 0
        if cache is not None:
            for i, name in enumerate(names):
                cached = await cache.lookup(meta.model, name, WHOLE)
                if cached is not NOTHING:
                    session.stats_for(meta).cache_hits += 1
                    found[i] = cached is not NOT_FOUND
            ticket = cache.ticket()
        asked = [i for i, answer in enumerate(found) if answer is MISS]
        if len(asked) == 1 and session.memory.leases_on_read():
            found[asked[0]] = await self._one(names[asked[0]])
        elif asked:
            groups = session.by_node(meta.redis_key(names[i]) for i in asked)
            if groups is None:
                await self._many(names, asked, found)
            else:
                # On a cluster, one read per master: a dead one sends only its keys on.
                await asyncio.gather(
                    *(self._many(names, [asked[j] for j in group], found) for group in groups)
                )
        if cache is not None:
            for i in asked:
                answer = meta.flag_entity(parts_list[i]) if found[i] else NOT_FOUND
                key = meta.redis_key(names[i])
                await cache.remember(meta.model, names[i], WHOLE, answer, ticket, key)
        flags = [answer is True for answer in found]
        session.stats_for(meta).not_found += flags.count(False)
        return flags

    async def _one(self, name: str) -> bool:
        """One flag, its lease taken in the same round trip as its read on a miss."""
        meta, session = self.meta, self.session
        key, token = meta.redis_key(name), lease_token()
        answer = await self._redis(session.memory.get_or_lease, key, meta.marker_key(name), token)
        if answer is CORRUPT:
            self._corrupt(key, "the key (or its marker) is not a string")
        if answer is DOWN or answer is CORRUPT:
            return (await self._through([name], answer))[0]
        value, before = answer
        flag = self._decode(key, value)
        if flag is MISS:
            self._stats.misses += 1
            return await self._read_leased(name, before, token) is not None
        if flag is CORRUPT:
            return (await self._through([name], flag))[0]
        if flag:
            self._stats.redis_hits += 1
        else:  # a remembered miss counts as a hash's not-found marker does: a miss
            self._stats.misses += 1
        return flag is True

    async def _many(self, names: Sequence[str], asked: list[int], found: list[Answer]) -> None:
        """Redis's answers at the ``asked`` indexes of ``found``, the fallback's for misses."""
        meta, session = self.meta, self.session
        keys = [meta.redis_key(names[i]) for i in asked]
        values = await self._redis(session.memory.get_strings, keys)
        if values is CORRUPT:
            # Which key is not a string, a batch's error does not say: all are dropped.
            self._corrupt(keys, "a key is not a string")
        if values is DOWN or values is CORRUPT:
            flags: list[Answer] = [values] * len(asked)
        else:
            flags = [self._decode(key, value) for key, value in zip(keys, values, strict=True)]
        stats = session.stats_for(meta)
        stats.redis_hits += sum(flag is True for flag in flags)
        stats.misses += sum(flag is False for flag in flags)  # remembered misses
        for why in (MISS, CORRUPT, DOWN):
            rest = [i for i, flag in zip(asked, flags, strict=True) if flag is why]
            if rest:
                read = await self._through([names[i] for i in rest], why)
                for i, set_ in zip(rest, read, strict=True):
                    found[i] = set_
        for i, flag in zip(asked, flags, strict=True):
            if type(flag) is bool:
                found[i] = flag

    async def _through(self, names: list[str], why: Unanswered) -> list[bool]:
        """Flags Redis did not answer, from the fallback (filled where Redis is up);
        keys that hold something else than a flag are dropped first."""
        redis_up = why is not DOWN
        if why is CORRUPT:
            keys = [self.meta.redis_key(name) for name in names]
            redis_up = await self._redis(self.session.memory.evict, keys) is not DOWN
        self._stats.misses += len(names)
        return [record is not None for record in await self._load(names, redis_up)]

    def _decode(self, key: bytes, value: bytes | None) -> Answer:
        """A flag's Redis string: ``1`` set, ``0`` remembered miss, none a ``MISS``."""
        if value is None:
            return MISS
        if value == FLAG_SET:
            return True
        if value == FLAG_MISSING:
            return False
        return self._corrupt(key, f"a flag holds {value!r}, not {FLAG_SET!r} or {FLAG_MISSING!r}")

    async def _fetch(self, names: list[str]) -> list[Any]:
        session = self.session
        records: list[Any] = await session.durable(session.fallback.get_many, self.meta, names)
        return records

    def _fills(
        self, found: Sequence[tuple[str, bytes, Any]], token: bytes, ttl: int | None
    ) -> list[Awaitable[None]]:
        meta, session = self.meta, self.session
        items = [(meta.redis_key(name), marker, FLAG_SET) for name, marker, _ in found]
        return [session.redis(session.memory.fill_strings, items, token, ttl)]

    def _fill_missing(
        self, missing: Sequence[tuple[str, bytes]], token: bytes, ttl: int | None
    ) -> Awaitable[None]:
        meta, session = self.meta, self.session
        items = [(meta.redis_key(name), marker, FLAG_MISSING) for name, marker in missing]
        return session.redis(session.memory.fill_strings, items, token, ttl)
