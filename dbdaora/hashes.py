"""Hash models: one Redis hash per entity, one fallback record per entity."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dbdaora.backends.base import is_lease
from dbdaora.exceptions import EntityNotFoundError
from dbdaora.manager import M, Manager, lease_token, logger
from dbdaora.meta import CorruptData


class HashManager(Manager[M]):
    """``Model.objects`` of a hash model."""

    async def add(self, *entities: M) -> None:
        """Write entities: the fallback first, then Redis in one MULTI.

        Raises:
            ValidationError: an entity is not of this model or a value does not fit.
            BackendError: a store failed; when the fallback did, Redis is untouched.
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
        await session.fallback.put_many(meta, names, entities)
        await session.memory.put_hashes(records, session.ttl(meta))

    async def get(self, *parts: Any, fields: Iterable[str] | None = None, **named: Any) -> M:
        """The entity under the key parts, by position or by key field name.

        Args:
            fields: read only these fields (HMGET); the others take their defaults.

        Raises:
            EntityNotFoundError: neither Redis nor the fallback has it.
            ValidationError: bad key parts or field names (before any I/O).
        """
        meta = self.meta
        key_parts = meta.key_parts(parts, named)
        name = meta.key_text(key_parts)
        key = meta.redis_key(name)
        memory = self.session.memory
        selected = None if fields is None else meta.select(fields)
        try:
            if selected is None:
                raw = await memory.hgetall(key)
                if raw:
                    entity: M = meta.from_hash(raw)
                    return entity
            else:
                values = await memory.hmget(key, [field.raw_name for field in selected])
                if any(value is not None for value in values):
                    partial: M = meta.from_fields(selected, values, key_parts)
                    return partial
        except CorruptData as exc:
            await self._evict_corrupt([key], exc)
        found = (await self._read_through([name]))[0]
        if found is None:
            raise EntityNotFoundError(meta.name, key_parts)
        if selected is not None:
            found = meta.project(found, selected, key_parts)
        result: M = found
        return result

    async def get_many(self, ids: Iterable[Any], *, fields: Iterable[str] | None = None) -> list[M]:
        """The entities found among ``ids``, in the order asked; missing ones left out.

        Each id is a key value, or a tuple of key parts for a composite key.
        """
        meta = self.meta
        parts_list = [self._parts_of(entity_id) for entity_id in ids]
        if not parts_list:
            return []
        names = [meta.key_text(parts) for parts in parts_list]
        keys = [meta.redis_key(name) for name in names]
        memory = self.session.memory
        selected = None if fields is None else meta.select(fields)
        found: list[Any] = [None] * len(keys)
        corrupt: list[bytes] = []
        if selected is None:
            for i, raw in enumerate(await memory.hgetall_many(keys)):
                if raw:
                    try:
                        found[i] = meta.from_hash(raw)
                    except CorruptData as exc:
                        logger.warning("corrupt Redis data at %r: %s", keys[i], exc)
                        corrupt.append(keys[i])
        else:
            raw_names = [field.raw_name for field in selected]
            for i, values in enumerate(await memory.hmget_many(keys, raw_names)):
                if any(value is not None for value in values):
                    try:
                        found[i] = meta.from_fields(selected, values, parts_list[i])
                    except CorruptData as exc:
                        logger.warning("corrupt Redis data at %r: %s", keys[i], exc)
                        corrupt.append(keys[i])
        if corrupt:
            await memory.evict(corrupt)
        misses = [i for i, entity in enumerate(found) if entity is None]
        if misses:
            read = await self._read_through([names[i] for i in misses])
            for i, entity in zip(misses, read, strict=True):
                if entity is not None and selected is not None:
                    entity = meta.project(entity, selected, parts_list[i])
                found[i] = entity
        return [entity for entity in found if entity is not None]

    async def exists(self, *parts: Any, **named: Any) -> bool:
        """Whether the entity exists, in Redis or (read through) in the fallback."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        if await self.session.memory.exists(meta.redis_key(name)):
            return True
        return (await self._read_through([name]))[0] is not None

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the entity: the fallback first, then Redis (the key, and a not-found marker)."""
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        await session.fallback.delete(meta, name)
        await session.memory.delete(meta.redis_key(name), meta.marker_key(name), session.ttl(meta))

    async def _evict_corrupt(self, keys: Sequence[bytes], exc: CorruptData) -> None:
        logger.warning("corrupt Redis data at %r, reading the fallback: %s", list(keys), exc)
        await self.session.memory.evict(keys)

    async def _read_through(self, names: Sequence[str]) -> list[Any]:
        """Entities from the fallback for Redis misses, filling Redis where leased.

        A not-found marker answers None without asking the fallback.
        """
        meta, session = self.meta, self.session
        memory = session.memory
        token = lease_token()
        markers = [meta.marker_key(name) for name in names]
        before = await memory.lease(markers, token)
        results: list[Any] = [None] * len(names)
        to_read = [i for i, value in enumerate(before) if value is None or is_lease(value)]
        if not to_read:
            return results
        entities = await session.fallback.get_many(meta, [names[i] for i in to_read])
        fills: list[tuple[bytes, bytes, Any]] = []
        missing: list[bytes] = []
        for i, entity in zip(to_read, entities, strict=True):
            results[i] = entity
            if before[i] is not None:
                continue  # another reader holds the lease and fills
            if entity is None:
                missing.append(markers[i])
            else:
                fills.append((meta.redis_key(names[i]), markers[i], meta.to_hash(entity)))
        ttl = session.ttl(meta)
        if fills:
            await memory.fill_hashes(fills, token, ttl)
        if missing:
            await memory.fill_missing(missing, token, ttl)
        return results
