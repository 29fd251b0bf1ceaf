"""Hash models: one Redis hash per entity, one fallback record per entity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from dbdaora.exceptions import (
    BackendError,
    BadDataError,
    EntityNotFoundError,
    RedisUnavailableError,
    ValidationError,
)
from dbdaora.lease import lease_token
from dbdaora.managers.base import CORRUPT, DOWN, MISS, M, Unanswered
from dbdaora.managers.read_through import ReadThrough
from dbdaora.meta import CorruptData, FieldInfo
from dbdaora.session import Session
from dbdaora.session.cache import NOT_FOUND, NOTHING, WHOLE

Selection = Sequence[FieldInfo] | None
"""The fields a ``fields=`` read asks for; None for the whole entity."""


class HashManager(ReadThrough[M]):
    """``Model.objects`` of a hash model."""

    __slots__ = ()

    async def add(self, *entities: M) -> None:
        """Write entities: their markers claimed, the fallback, then Redis under the claim.

        Redis gets one atomic script per entity; where another write claimed the
        marker meanwhile, it drops its copy instead (``dbdaora.lease``), so racing
        writers never leave Redis and the fallback holding different entities.
        With Redis unreachable the write still succeeds: the keys are remembered
        and deleted from Redis before the session's next Redis command.

        Raises:
            ValidationError: an entity is not of this model or a value does not fit.
            BackendError: the fallback failed. Records it certainly did not write
                keep their Redis copies; those it committed (``written``, a
                Datastore batch's other commits) are written to Redis too.
            OutcomeUnknownError: a commit got no answer; the Redis copies of the
                records in ``unknown`` are deleted, so reads go to the fallback.
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
        token, claimed = await self._claim([record[1] for record in records])
        try:
            await session.durable(session.fallback.put_many, meta, names, entities)
        except BackendError as exc:
            # Only records whose outcome is unknown lose their Redis copies; the
            # ones a refused write left alone keep theirs, still true.
            await self._drop_copies(exc.unknown.intersection(names))
            done = [i for i, name in enumerate(names) if name in exc.written - exc.unknown]
            if done:
                await self._put_in_redis(
                    [names[i] for i in done],
                    [entities[i] for i in done],
                    [records[i] for i in done],
                    token,
                    claimed,
                )
            raise
        await self._put_in_redis(names, entities, records, token, claimed)

    async def _put_in_redis(
        self,
        names: list[str],
        entities: Sequence[M],
        records: list[tuple[bytes, bytes, Any]],
        token: bytes,
        claimed: bool,
    ) -> None:
        """The Redis half of an ``add``, for records the fallback has committed."""
        meta, session = self.meta, self.session
        session.stats_for(meta).fallback_writes += len(records)
        session.overtake(meta.model, names)
        keys = [key for record in records for key in record[:2]]
        # One script a key, the last entity given for it: a second under one claim
        # would find the marker dropped by the first.
        unique = list({record[0]: record for record in records}.values())
        memory, ttl = session.memory, session.ttl(meta)
        await self._under_claim(claimed, keys, memory.put_hashes, unique, token, ttl)
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
        variant = WHOLE if selected is None else tuple(field.name for field in selected)
        session = self.session
        cache = session.cache
        ticket = 0
        if cache is not None:
            cached = await self._cached(name, variant, key_parts)
            if cached is not NOTHING:
                copy: M = meta.copy(cached)
                return copy
            ticket = cache.ticket()
        # Awaited and caught here, not in a step of its own: a step would add a
        # coroutine frame to every hit.
        read, token = self._first_read(session, name, selected)
        try:
            answer = await read
            found = self._decode(answer if token is None else answer[0], key_parts, selected)
        except RedisUnavailableError:
            found = answer = self._down()
        except (CorruptData, BadDataError) as exc:  # BadDataError: a key of another type
            found = answer = self._corrupt(meta.redis_key(name), exc)
        if type(found) is Unanswered:  # cheaper than isinstance on every hit
            found = await self._missed(name, key_parts, selected, found, answer, token)
        else:
            session.stats_for(meta).redis_hits += 1
        if cache is not None:
            answer = NOT_FOUND if found is None else meta.copy(found)
            await cache.remember(meta.model, name, variant, answer, ticket, meta.redis_key(name))
        if found is None:
            session.stats_for(meta).not_found += 1
            raise EntityNotFoundError(meta.name, key_parts)
        result: M = found
        return result

    def _first_read(
        self, session: Session, name: str, selected: Selection
    ) -> tuple[Awaitable[Any], bytes | None]:
        """A get's one Redis read, to await, and the lease token it offers (or None).

        ``fields=`` reads with HMGET. A whole read takes the fill lease on a miss
        in the same round trip where the store makes that one round trip; else
        it reads with HGETALL.
        """
        meta, memory = self.meta, session.memory
        key = meta.redis_key(name)
        if selected is not None:
            return session.redis(memory.hmget, key, [field.raw_name for field in selected]), None
        if memory.leases_on_read():
            token = lease_token()
            return session.redis(memory.hgetall_or_lease, key, meta.marker_key(name), token), token
        return session.redis(memory.hgetall, key), None

    async def _missed(
        self,
        name: str,
        key_parts: tuple[Any, ...],
        selected: Selection,
        why: Unanswered,
        answer: Any,
        token: bytes | None,
    ) -> Any:
        """A get's entity when Redis gave none, or None where it is nowhere.

        ``answer`` is the first read's. A miss whose first read offered the lease
        goes on from that answer; the others read through (Redis up) or read the
        fallback alone (Redis down).
        """
        redis_up = why is not DOWN
        if why is CORRUPT:
            redis_up = await self._drop_corrupt([self.meta.redis_key(name)])
        self._stats.misses += 1
        if why is MISS and token is not None:
            return await self._read_leased(name, answer[1], token)
        found = (await self._load([name], redis_up))[0]
        if found is not None and selected is not None:
            found = self.meta.project(found, selected, key_parts)
        return found

    def _decode(self, raw: Any, key_parts: Sequence[Any], selected: Selection) -> Any:
        """The entity in a HGETALL or HMGET answer, or ``MISS``.

        Raises:
            CorruptData: Redis holds text that does not decode.
        """
        if selected is None:
            return self.meta.from_hash(raw, key_parts) if raw else MISS
        if any(value is not None for value in raw):
            return self.meta.from_fields(selected, raw, key_parts)
        return MISS

    async def _drop_corrupt(self, keys: list[bytes]) -> bool:
        """Delete keys whose data does not decode, so the fallback refills them.

        Returns:
            Whether Redis answered.
        """
        return await self._redis(self.session.memory.evict, keys) is not DOWN

    async def get_many(self, ids: Iterable[Any], *, fields: Iterable[str] | None = None) -> list[M]:
        """The entities found among ``ids``, in the order asked; missing ones left out.

        Each id is a key value, or a tuple of key parts for a composite key.
        """
        meta = self.meta
        if isinstance(ids, (str, bytes)):
            raise ValidationError(
                f"{meta.name}: get_many takes a collection of ids, got {ids!r}; "
                "for one id, use get",
                model=meta.name,
                value=ids,
            )
        parts_list = [self._parts_of(entity_id) for entity_id in ids]
        if not parts_list:
            return []
        names = [meta.key_text(parts) for parts in parts_list]
        selected = None if fields is None else meta.select(fields)
        variant = WHOLE if selected is None else tuple(field.name for field in selected)
        stats = self._stats
        cache = self.session.cache
        found: list[Any] = [NOTHING] * len(names)
        ticket = 0
        if cache is not None:
            for i, name in enumerate(names):
                cached = await cache.lookup(meta.model, name, variant)
                if cached is not NOTHING:
                    stats.cache_hits += 1
                    found[i] = None if cached is NOT_FOUND else meta.copy(cached)
            ticket = cache.ticket()
        asked = [i for i, entity in enumerate(found) if entity is NOTHING]
        if asked:
            # On a cluster, one read per master: a dead one sends only its keys to the fallback.
            groups = self.session.by_node(meta.redis_key(names[i]) for i in asked)
            if groups is None:
                await self._many(names, parts_list, selected, asked, found)
            else:
                await asyncio.gather(
                    *(
                        self._many(names, parts_list, selected, [asked[j] for j in group], found)
                        for group in groups
                    )
                )
            if cache is not None:
                for i in asked:
                    answer = NOT_FOUND if found[i] is None else meta.copy(found[i])
                    key = meta.redis_key(names[i])
                    await cache.remember(meta.model, names[i], variant, answer, ticket, key)
        stats.not_found += sum(entity is None for entity in found)
        return [entity for entity in found if entity is not None]

    async def _many(
        self,
        names: Sequence[str],
        parts_list: Sequence[tuple[Any, ...]],
        selected: Selection,
        asked: list[int],
        found: list[Any],
    ) -> None:
        """Redis's entities at the ``asked`` indexes of ``found``, the fallback's for the rest."""
        misses, redis_up = await self._many_from_redis(names, parts_list, selected, asked, found)
        if misses:
            await self._many_from_fallback(names, parts_list, selected, misses, redis_up, found)

    async def _many_from_redis(
        self,
        names: Sequence[str],
        parts_list: Sequence[tuple[Any, ...]],
        selected: Selection,
        asked: list[int],
        found: list[Any],
    ) -> tuple[list[int], bool]:
        """Put Redis's entities at the ``asked`` indexes of ``found``.

        Returns:
            The indexes Redis missed, and whether Redis answered. Where Redis is
            unavailable, or cannot drop what does not decode, that is all of
            them, with no hit counted.
        """
        meta, session = self.meta, self.session
        memory = session.memory
        keys = [meta.redis_key(names[i]) for i in asked]
        try:  # caught here, not by _redis: that would add a frame to every hit
            if selected is None:
                rows: list[Any] = await session.redis(memory.hgetall_many, keys)
            else:
                raw_names = [field.raw_name for field in selected]
                rows = await session.redis(memory.hmget_many, keys, raw_names)
        except RedisUnavailableError:
            self._down()
            return self._all_missed(asked), False
        except BadDataError:
            each = await self._each_alone(keys, selected)
            if each is None:
                return self._all_missed(asked), False
            rows = each
        entities, corrupt_keys = self._decode_rows(
            rows, keys, [parts_list[i] for i in asked], selected
        )
        if corrupt_keys and not await self._drop_corrupt(corrupt_keys):
            return self._all_missed(asked), False
        stats = session.stats_for(meta)
        misses = []
        for i, entity in zip(asked, entities, strict=True):
            if entity is MISS:
                misses.append(i)
            else:
                stats.redis_hits += 1
                found[i] = entity
        stats.misses += len(misses)
        return misses, True

    async def _each_alone(self, keys: Sequence[bytes], selected: Selection) -> list[Any] | None:
        """A batch read again key by key, when Redis refused one key of it (of another
        type) and a batch's error does not say which: each refused key reads as a
        ``BadDataError`` in its row. None where Redis is unavailable."""
        session = self.session
        memory = session.memory
        reads: list[Awaitable[Any]]
        if selected is None:
            reads = [session.redis(memory.hgetall, key) for key in keys]
        else:
            raw_names = [field.raw_name for field in selected]
            reads = [session.redis(memory.hmget, key, raw_names) for key in keys]
        rows = await asyncio.gather(*reads, return_exceptions=True)
        for row in rows:
            if isinstance(row, BaseException) and not isinstance(row, BadDataError):
                if isinstance(row, RedisUnavailableError):
                    self._down()
                    return None
                raise row
        return rows

    def _decode_rows(
        self,
        rows: Sequence[Any],
        keys: Sequence[bytes],
        parts_list: Sequence[tuple[Any, ...]],
        selected: Selection,
    ) -> tuple[list[Any], list[bytes]]:
        """The entities in a batch of HGETALL or HMGET answers (``MISS`` on a miss), and
        the keys whose data does not decode or Redis refused (a ``BadDataError`` row), logged."""
        entities: list[Any] = [MISS] * len(rows)
        corrupt_keys: list[bytes] = []
        for i, row in enumerate(rows):
            try:
                if type(row) is BadDataError:
                    raise row
                entities[i] = self._decode(row, parts_list[i], selected)
            except (CorruptData, BadDataError) as exc:
                self._corrupt(keys[i], exc)
                corrupt_keys.append(keys[i])
        return entities, corrupt_keys

    def _all_missed(self, asked: list[int]) -> list[int]:
        self._stats.misses += len(asked)
        return asked

    async def _many_from_fallback(
        self,
        names: Sequence[str],
        parts_list: Sequence[tuple[Any, ...]],
        selected: Selection,
        misses: list[int],
        redis_up: bool,
        found: list[Any],
    ) -> None:
        """Put the fallback's entities (None where it has none) at the indexes Redis missed."""
        loaded = await self._load([names[i] for i in misses], redis_up)
        for i, entity in zip(misses, loaded, strict=True):
            if entity is not None and selected is not None:
                entity = self.meta.project(entity, selected, parts_list[i])
            found[i] = entity

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
        key = meta.redis_key(name)
        try:  # caught here, not by _redis: that would add a frame to every hit
            # HLEN, not EXISTS: it tells a hash from a key of another type.
            if await session.redis(session.memory.hlen, key):
                session.stats_for(meta).redis_hits += 1
                return True
        except RedisUnavailableError:
            self._down()
            redis_up = False
        except BadDataError as exc:
            self._corrupt(key, exc)
            redis_up = await self._drop_corrupt([key])
        return (await self._load([name], redis_up))[0] is not None

    async def delete(self, *parts: Any, **named: Any) -> None:
        """Delete the entity: its marker claimed, the fallback, then Redis under the claim
        (the key dropped, a not-found marker).

        Raises:
            BackendError: the fallback failed; the Redis copy is deleted only
                where the outcome is unknown (``OutcomeUnknownError``).
        """
        meta = self.meta
        name = meta.key_text(meta.key_parts(parts, named))
        session = self.session
        key, marker = meta.redis_key(name), meta.marker_key(name)
        token, claimed = await self._claim([marker])
        try:
            await session.durable(session.fallback.delete, meta, name)
        except BackendError as exc:
            await self._drop_copies(exc.unknown)
            raise
        session.stats_for(meta).fallback_writes += 1
        session.overtake(meta.model, [name])
        memory, ttl = session.memory, session.ttl(meta)
        await self._under_claim(claimed, [key, marker], memory.delete, key, marker, token, ttl)
        if session.cache is not None:
            await session.cache.deleted(meta.model, name)

    async def _fetch(self, names: list[str]) -> list[Any]:
        session = self.session
        entities: list[Any] = await session.durable(session.fallback.get_many, self.meta, names)
        return entities

    def _fills(
        self, found: Sequence[tuple[str, bytes, Any]], token: bytes, ttl: int | None
    ) -> list[Awaitable[None]]:
        meta, session = self.meta, self.session
        items = [
            (meta.redis_key(name), marker, meta.to_hash(entity)) for name, marker, entity in found
        ]
        return [session.redis(session.memory.fill_hashes, items, token, ttl)]
