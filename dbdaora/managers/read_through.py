"""The read-through steps every data type shares: lease, fallback read, fill.

A data type's manager subclasses ``ReadThrough`` and says two things: how the
fallback's records are read (``_fetch``) and which Redis writes fill them
(``_fills``). The steps here keep the lease protocol of ``dbdaora.lease`` for
it, and share each fallback read among the readers that ask at the same time
(``Session.coalesce`` and ``Session.lead``).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from typing import Any

from dbdaora.exceptions import BadDataError, RedisUnavailableError
from dbdaora.lease import is_lease, lease_token
from dbdaora.managers.base import CORRUPT, DOWN, M, Manager
from dbdaora.session import tracing


class ReadThrough(Manager[M], abc.ABC):
    """A manager whose Redis misses are read from the fallback and filled under a lease.

    A record is whatever ``_fetch`` returns for one name and ``_fills`` writes
    back: an entity for a hash, a member list for a sorted set. None stands for
    "the fallback has none", which fills a not-found marker.
    """

    __slots__ = ()

    @abc.abstractmethod
    async def _fetch(self, names: list[str]) -> list[Any]:
        """The fallback's records of ``names`` (through ``session.durable``), None where none."""

    @abc.abstractmethod
    def _fills(
        self, found: Sequence[tuple[str, bytes, Any]], token: bytes, ttl: int | None
    ) -> list[Awaitable[None]]:
        """The ``session.redis`` calls filling each (name, marker, record) under ``token``."""

    def _fill_missing(
        self, missing: Sequence[tuple[str, bytes]], token: bytes, ttl: int | None
    ) -> Awaitable[None]:
        """The ``session.redis`` call remembering that the fallback has none of each
        (name, marker), under ``token``: a not-found marker (a flag says so in its key)."""
        session = self.session
        markers = [marker for _, marker in missing]
        return session.redis(session.memory.fill_missing, markers, token, ttl)

    async def _load(self, names: Sequence[str], redis_up: bool) -> list[Any]:
        """Records from the fallback, one read per name however many callers ask."""
        read = self._read_through if redis_up else self._read_fallback
        return await self.session.coalesce(self.meta.model, names, read)

    async def fallback_records(self, parts_list: Iterable[Sequence[Any]]) -> list[Any]:
        """The fallback's record of each key (None where it has none), read alone:
        Redis is neither read nor filled and the session cache is not used (0.27's
        ``memory=False`` reads). A record is what ``_fetch`` returns.

        Raises:
            ValidationError: bad key parts (before any I/O).
        """
        meta = self.meta
        names = [meta.key_text(meta.key_parts(tuple(parts), {})) for parts in parts_list]
        return await self._read_fallback(names) if names else []

    async def _read_fallback(self, names: list[str]) -> list[Any]:
        """The fallback alone, nothing filled: Redis is down, or another reader holds the lease."""
        records = await self._fetch(names)
        self._stats.fallback_reads += len(names)
        tracing.note_fallback_read(len(names))
        return records

    async def _read_through(self, names: list[str]) -> list[Any]:
        """Read the fallback for Redis misses and fill Redis where this reader holds the lease.

        A not-found marker answers None without asking the fallback. With Redis
        unreachable, the fallback answers and nothing is filled; so it does where
        a marker is of another type, which is dropped for the next read.
        """
        token = lease_token()
        markers = [self.meta.marker_key(name) for name in names]
        before = await self._redis(self.session.memory.lease, markers, token)
        if before is CORRUPT:
            self._corrupt(markers, "a marker is not a string")
            await self._redis(self.session.memory.evict, markers)
            return await self._read_fallback(names)
        if before is DOWN:
            return await self._read_fallback(names)
        return await self._fill_through(names, markers, before, token)

    async def _read_leased(self, name: str, before: bytes | None, token: bytes) -> Any:
        """The record for a read whose own round trip missed and answered the lease.

        ``before`` is the marker's value before ``token`` was offered. The lease
        holder's read and fill is one others may join; a not-found marker
        answers None; readers behind another's lease read the fallback without
        filling, sharing any read under way.
        """
        session, model = self.session, self.meta.model
        if before is None:
            marker = self.meta.marker_key(name)

            async def read_and_fill(names: list[str]) -> list[Any]:
                return await self._fill_through(names, [marker], [None], token)

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
        results: list[Any] = [None] * len(names)
        to_read = [i for i, value in enumerate(before) if value is None or is_lease(value)]
        if not to_read:
            return results
        records = await self._read_fallback([names[i] for i in to_read])
        found: list[tuple[str, bytes, Any]] = []
        missing: list[tuple[str, bytes]] = []
        for i, record in zip(to_read, records, strict=True):
            results[i] = record
            if before[i] is not None:  # another reader's lease: that reader fills
                continue
            if record is None:
                missing.append((names[i], markers[i]))
            else:
                found.append((names[i], markers[i], record))
        session = self.session
        ttl = session.ttl(self.meta)
        writes = self._fills(found, token, ttl) if found else []
        if missing:
            writes.append(self._fill_missing(missing, token, ttl))
        if writes:
            try:
                # Started together, writes go out in one pipeline; a lone one needs no task.
                await (writes[0] if len(writes) == 1 else asyncio.gather(*writes))
            except RedisUnavailableError:
                self._down()
            except BadDataError as exc:  # a marker changed type since the lease
                self._corrupt(markers, exc)
        return results
