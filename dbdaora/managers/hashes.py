"""Hash models: one Redis hash per entity, one fallback record per entity."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from dbdaora.exceptions import BackendError, EntityNotFoundError, RedisUnavailableError
from dbdaora.lease import is_lease, lease_token
from dbdaora.managers.base import M, Manager, logger
from dbdaora.meta import CorruptData, FieldInfo
from dbdaora.session.cache import NOT_FOUND, NOTHING, WHOLE


class HashManager(Manager[M]):
    """``Model.objects`` of a hash model."""

    async def add(self, *entities: M) -> None:
        """Write entities: the fallback first, then Redis in one atomic script per entity.

        With Redis unreachable the write still succeeds: the keys are remembered
        and deleted from Redis before the session's next Redis command.

        Raises:
            ValidationError: an entity is not of this model or a value does not fit.
            BackendError: the fallback failed; then Redis is untouched.
        """
        meta = self.meta
        names, records = [], []
        for entity in entities:
            meta.check_instance(entity)
            name = meta.instance_key_text(entity)
            names.append(name)
            records.append((meta.redis_key(name), meta.marker_key(name), meta.to_hash(entity)))
        if not records:
            return
        session = self.session
        try:
            await session.durable(session.fallback.put_many, meta, names, entities)
        except BackendError:
            # A batch the fallback took only in part (several commits) leaves some
            # records newer than Redis: drop the Redis copies of the whole batch.
            await self._evict([key for record in records for key in record[:2]])
            raise
        session.stats_for(meta).fallback_writes += len(records)
        try:
            await session.redis(session.memory.put_hashes, records, session.ttl(meta))
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            session.remember_unwritten(key for record in records for key in record[:2])
        if session.cache is not None:
            for name, entity in zip(names, entities, strict=True):
                await session.cache.replace(meta.model, name, meta.copy(entity))

    async def get(self, *parts: Any, fields: Iterable[str] | None = None, **named: Any) -> M:
        """The entity under the key parts, by position or by key field name.

        Args:
            fields: read only these fields (HMGET); the others take their defaults.

        Raises:
            EntityNotFoundError: neither Redis nor the fallback has it.
            ValidationError: bad key parts or field names (before any I/O).
            BackendError: the fallback failed when it had to be read.
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        name = meta.key_text(key_parts)
        selected = None if fields is None else meta.select(fields)
        session = self.session
        stats = session.stats_for(meta)
        cache = session.cache
        variant = WHOLE if selected is None else tuple(field.name for field in selected)
        if cache is not None:
            cached = await self._cached(name, variant, key_parts)
            if cached is not NOTHING:
                copy: M = meta.copy(cached)
                return copy
        redis_up = True
        key = meta.redis_key(name)
        memory = session.memory
        # A whole read that misses may take the fill lease in the same round trip.
        token: bytes | None = None
        before: bytes | None = None
        raw: Any = None
        try:
            if selected is not None:
                raw = await session.redis(memory.hmget, key, [f.raw_name for f in selected])
            elif memory.leases_on_read():
                token = lease_token()
                raw, before = await session.redis(
                    memory.hgetall_or_lease, key, meta.marker_key(name), token
                )
            else:
                raw = await session.redis(memory.hgetall, key)
            try:
                found = self._decode(raw, key_parts, selected)
            except CorruptData as exc:
                _log_corrupt(key, exc)
                await self._drop_corrupt([key])
                found = None
        except RedisUnavailableError:
            stats.errors += 1
            found, redis_up = None, False
        if found is not None:
            stats.redis_hits += 1
        else:
            stats.misses += 1
            if token is not None and redis_up and not raw:
                found = await self._read_leased(name, before, token)
            else:
                found = (await self._load([name], redis_up))[0]
                if found is not None and selected is not None:
                    found = meta.project(found, selected, key_parts)
        if cache is not None:
            await cache.remember(
                meta.model, name, variant, NOT_FOUND if found is None else meta.copy(found)
            )
        if found is None:
            stats.not_found += 1
            raise EntityNotFoundError(meta.name, key_parts)
        result: M = found
        return result

    def _decode(
        self, raw: Any, key_parts: Sequence[Any], selected: Sequence[FieldInfo] | None
    ) -> Any:
        """The entity in a HGETALL or HMGET answer, or None on a miss.

        Raises:
            CorruptData: Redis holds text that does not decode.
        """
        if selected is None:
            return self.meta.from_hash(raw) if raw else None
        if any(value is not None for value in raw):
            return self.meta.from_fields(selected, raw, key_parts)
        return None

    async def _drop_corrupt(self, keys: list[bytes]) -> None:
        """Delete keys whose data does not decode, so the fallback refills them."""
        await self.session.redis(self.session.memory.evict, keys)

    async def get_many(self, ids: Iterable[Any], *, fields: Iterable[str] | None = None) -> list[M]:
        """The entities found among ``ids``, in the order asked; missing ones left out.

        Each id is a key value, or a tuple of key parts for a composite key.
        """
        meta = self.meta
        parts_list = [self._parts_of(entity_id) for entity_id in ids]
        if not parts_list:
            return []
        names = [meta.key_text(parts) for parts in parts_list]
        selected = None if fields is None else meta.select(fields)
        variant = WHOLE if selected is None else tuple(field.name for field in selected)
        session = self.session
        stats = session.stats_for(meta)
        cache = session.cache
        found: list[Any] = [NOTHING] * len(names)
        if cache is not None:
            for i, name in enumerate(names):
                cached = await cache.lookup(meta.model, name, variant)
                if cached is not NOTHING:
                    stats.cache_hits += 1
                    found[i] = None if cached is NOT_FOUND else meta.copy(cached)
        asked = [i for i, entity in enumerate(found) if entity is NOTHING]
        if asked:
            redis_up = True
            try:
                from_redis = await self._many_from_redis(
                    [names[i] for i in asked], [parts_list[i] for i in asked], selected
                )
            except RedisUnavailableError:
                stats.errors += 1
                from_redis, redis_up = [None] * len(asked), False
            misses = []
            for i, entity in zip(asked, from_redis, strict=True):
                if entity is None:
                    misses.append(i)
                else:
                    stats.redis_hits += 1
                    found[i] = entity
            stats.misses += len(misses)
            if misses:
                loaded = await self._load([names[i] for i in misses], redis_up)
                for i, entity in zip(misses, loaded, strict=True):
                    if entity is not None and selected is not None:
                        entity = meta.project(entity, selected, parts_list[i])
                    found[i] = entity
            if cache is not None:
                for i in asked:
                    entity = found[i]
                    answer = NOT_FOUND if entity is None else meta.copy(entity)
                    await cache.remember(meta.model, names[i], variant, answer)
        stats.not_found += sum(entity is None for entity in found)
        return [entity for entity in found if entity is not None]

    async def _many_from_redis(
        self,
        names: Sequence[str],
        parts_list: Sequence[tuple[Any, ...]],
        selected: Sequence[FieldInfo] | None,
    ) -> list[Any]:
        meta, session = self.meta, self.session
        keys = [meta.redis_key(name) for name in names]
        found: list[Any] = [None] * len(keys)
        corrupt_keys: list[bytes] = []
        if selected is None:
            rows: list[Any] = await session.redis(session.memory.hgetall_many, keys)
        else:
            raw_names = [field.raw_name for field in selected]
            rows = await session.redis(session.memory.hmget_many, keys, raw_names)
        for i, row in enumerate(rows):
            try:
                found[i] = self._decode(row, parts_list[i], selected)
            except CorruptData as exc:
                _log_corrupt(keys[i], exc)
                corrupt_keys.append(keys[i])
        if corrupt_keys:
            await self._drop_corrupt(corrupt_keys)
        return found

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the entity exists, in Redis or (read through) in the fallback."""
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        name = meta.key_text(key_parts)
        session = self.session
        if session.cache is not None:
            cached = await session.cache.lookup(meta.model, name, WHOLE)
            if cached is not NOTHING:
                session.stats_for(meta).cache_hits += 1
                return cached is not NOT_FOUND
        redis_up = True
        try:
            if await session.redis(session.memory.exists, meta.redis_key(name)):
                session.stats_for(meta).redis_hits += 1
                return True
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            redis_up = False
        return (await self._load([name], redis_up))[0] is not None

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the entity: the fallback first, then Redis (the key, and a not-found marker)."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        await session.durable(session.fallback.delete, meta, name)
        session.stats_for(meta).fallback_writes += 1
        key, marker = meta.redis_key(name), meta.marker_key(name)
        try:
            await session.redis(session.memory.delete, key, marker, session.ttl(meta))
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            session.remember_unwritten([key, marker])
        if session.cache is not None:
            await session.cache.remember(meta.model, name, WHOLE, NOT_FOUND)

    async def _evict(self, keys: list[bytes]) -> None:
        session = self.session
        try:
            await session.redis(session.memory.evict, keys)
        except RedisUnavailableError:
            session.remember_unwritten(keys)

    async def _load(self, names: Sequence[str], redis_up: bool) -> list[Any]:
        """Entities from the fallback, one read per name however many callers ask."""
        read = self._read_through if redis_up else self._read_fallback
        return await self.session.coalesce(self.meta.model, names, read)

    async def _read_fallback(self, names: list[str]) -> list[Any]:
        """The fallback alone, nothing filled: Redis is down, or another reader holds the lease."""
        session = self.session
        session.stats_for(self.meta).fallback_reads += len(names)
        entities: list[Any] = await session.durable(session.fallback.get_many, self.meta, names)
        return entities

    async def _read_through(self, names: list[str]) -> list[Any]:
        """Read the fallback for Redis misses and fill Redis where this reader holds the lease.

        A not-found marker answers None without asking the fallback. With Redis
        unreachable, the fallback answers and nothing is filled.
        """
        meta, session = self.meta, self.session
        token = lease_token()
        markers = [meta.marker_key(name) for name in names]
        try:
            before: list[bytes | None] = await session.redis(session.memory.lease, markers, token)
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
            return await self._read_fallback(names)
        return await self._fill_through(names, markers, before, token)

    async def _read_leased(self, name: str, before: bytes | None, token: bytes) -> Any:
        """The entity for a get whose first round trip missed and answered the lease.

        The lease holder's read and fill is one others may join; a not-found
        marker answers None; readers behind another's lease read the fallback
        without filling, sharing any read under way.
        """
        session, model = self.session, self.meta.model
        if before is None:

            async def read_and_fill(names: list[str]) -> list[Any]:
                return await self._fill_through(names, [self.meta.marker_key(name)], [None], token)

            return (await session.lead(model, [name], read_and_fill))[0]
        if not is_lease(before):
            return None
        return (await session.coalesce(model, [name], self._read_fallback))[0]

    async def _fill_through(
        self,
        names: Sequence[str],
        markers: Sequence[bytes],
        before: Sequence[bytes | None],
        token: bytes,
    ) -> list[Any]:
        """Fallback reads for the names whose marker ``before`` a lease allowed; the fills.

        ``before`` holds each marker's value before ``token`` was offered: None
        where this reader took the lease, a lease where another reader holds it.
        """
        meta, session = self.meta, self.session
        memory = session.memory
        leased = [value is None for value in before]
        results: list[Any] = [None] * len(names)
        to_read = [i for i, value in enumerate(before) if value is None or is_lease(value)]
        if not to_read:
            return results
        entities = await session.durable(
            session.fallback.get_many, meta, [names[i] for i in to_read]
        )
        session.stats_for(meta).fallback_reads += len(to_read)
        fills: list[tuple[bytes, bytes, Any]] = []
        missing: list[bytes] = []
        for i, entity in zip(to_read, entities, strict=True):
            results[i] = entity
            if not leased[i]:
                continue
            if entity is None:
                missing.append(markers[i])
            else:
                fills.append((meta.redis_key(names[i]), markers[i], meta.to_hash(entity)))
        ttl = session.ttl(meta)
        writes = []
        if fills:
            writes.append(session.redis(memory.fill_hashes, fills, token, ttl))
        if missing:
            writes.append(session.redis(memory.fill_missing, missing, token, ttl))
        try:
            if len(writes) == 1:  # the usual case: no task to start
                await writes[0]
            else:  # started together, the two go out in one pipeline
                await asyncio.gather(*writes)
        except RedisUnavailableError:
            session.stats_for(meta).errors += 1
        return results


def _log_corrupt(key: bytes, exc: CorruptData) -> None:
    logger.warning("corrupt Redis data at %r, reading the fallback: %s", key, exc)
