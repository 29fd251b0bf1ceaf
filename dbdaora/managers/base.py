"""What the hash and sorted-set managers share: their model, session and lease tokens."""

from __future__ import annotations

import logging
from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

from dbdaora.exceptions import EntityNotFoundError
from dbdaora.meta import ModelMeta
from dbdaora.session import Session, default_session
from dbdaora.session.cache import NOT_FOUND, NOTHING

M = TypeVar("M")

logger = logging.getLogger("dbdaora")


class Manager(Generic[M]):
    """Reads and writes one model through a session (the default one unless ``using``)."""

    def __init__(self, meta: ModelMeta, session: Session | None = None) -> None:
        self.meta = meta
        self._session = session

    @property
    def session(self) -> Session:
        return self._session if self._session is not None else default_session()

    def using(self, session: Session) -> Any:
        """This manager on an explicit session."""
        return type(self)(self.meta, session)

    async def _cached(self, name: str, variant: Hashable, parts: tuple[Any, ...]) -> Any:
        """The session cache's answer, or ``NOTHING``; a cached miss raises at once.

        Raises:
            EntityNotFoundError: the cache holds a not-found answer for the key.
        """
        meta, session = self.meta, self.session
        assert session.cache is not None
        cached = await session.cache.lookup(meta.model, name, variant)
        if cached is not NOTHING:
            stats = session.stats_for(meta)
            stats.cache_hits += 1
            if cached is NOT_FOUND:
                stats.not_found += 1
                raise EntityNotFoundError(meta.name, parts)
        return cached

    def _parts_of(self, entity_id: Any) -> tuple[Any, ...]:
        """The key parts of one id of ``get_many``: a value, or a tuple for composite keys."""
        if len(self.meta.key_fields) == 1:
            return (entity_id,)
        parts = entity_id if isinstance(entity_id, tuple) else (entity_id,)
        return self.meta.key_parts(parts, {})

    def _split(self, args: Sequence[Any]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        """Leading key parts, then the rest of a positional call."""
        count = len(self.meta.key_fields)
        return self.meta.key_parts(args[:count], {}), tuple(args[count:])
