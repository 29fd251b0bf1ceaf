"""``dbdaora warm``: every fallback record of a model into Redis, through read-through."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import attrs

from dbdaora.cli.loading import parts_of
from dbdaora.exceptions import BackendError
from dbdaora.meta import ModelMeta, StoreKind
from dbdaora.session import Session

PAGE = 500


@attrs.frozen
class Warmed:
    """What a warm did: records read, those Redis already held, those it filled, and
    those a not-found marker in Redis hid (a stale marker: ``repair`` deletes it)."""

    records: int
    in_redis: int
    filled: int
    marked_missing: int


async def warm(
    meta: ModelMeta, session: Session, *, page: int, advance: Callable[[int], None]
) -> Warmed:
    """Read every record of the model through the model's own read-through, a page at a time.

    A Redis copy is a hit and is left as it is; a miss takes the lease, reads the
    fallback after taking it, and fills with the model's TTL only while its lease
    holds: so a copy a writer puts in meanwhile is never overwritten by an older one.

    Raises:
        BackendError: a store failed (Redis: any read of the warm fell back).
    """
    model: Any = meta.model  # a Model subclass: its objects give the manager
    manager = model.objects.using(session)
    stats = session.stats_for(meta)
    after: str | None = None
    count = 0
    while names := await session.fallback.record_names(meta, after, page):
        keys = [parts for name in names if (parts := parts_of(meta, name))]
        if meta.kind in (StoreKind.HASH, StoreKind.FLAG):
            await manager.get_many([parts if len(parts) > 1 else parts[0] for parts in keys])
        else:
            await asyncio.gather(*(manager.get(*parts) for parts in keys))
        if stats.errors:
            raise BackendError(
                f"Redis failed during warm, after {count} records of {meta.name}",
                url=session.memory.url,
            )
        count += len(names)
        after = names[-1]
        advance(len(names))
    marked = stats.not_found  # records named by the fallback: a not-found marker hid them
    return Warmed(count, stats.redis_hits, stats.misses - marked, marked)
