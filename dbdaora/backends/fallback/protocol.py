"""What every fallback (durable) store implements: ``FallbackStore``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dbdaora.meta import ModelMeta

Members = Sequence[tuple[str, float]]
Points = Sequence[tuple[str, float, float]]
"""A geospatial set's members: (member, longitude, latitude), one record each."""
Repair = tuple[bytes, int]
"""A repair record: a Redis key whose copy may be older than the fallback, and its stamp.

Each ``add_repairs`` gives its keys a new stamp, so ``clear_repairs`` of records
read before a key was recorded again leaves the newer record in place.
"""


class FallbackStore(Protocol):
    """The durable side. Records are named by the key parts joined with ``:``.

    Every method fails with ``BackendError``. A failed write says what it did:
    ``written`` names the records it committed (a batch committed in parts),
    ``unknown`` those whose commit got no answer (then the error is an
    ``OutcomeUnknownError``); any other record certainly kept its old value.
    The managers keep, update or delete the Redis copies accordingly.
    """

    url: str

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """One cheap round trip; ``BackendError`` when the store does not answer.

        The session's breaker sends it while open, to close as soon as the store answers.
        """
        ...

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        """The entities stored under ``names``, None where there is none."""
        ...

    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None: ...

    async def delete(self, meta: ModelMeta, name: str) -> None: ...

    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        """A sorted set's members, None where there is no record."""
        ...

    async def add_members(
        self, meta: ModelMeta, name: str, members: Members, max_size: int | None
    ) -> bool:
        """Add members, keeping the ``max_size`` highest; True when this created the set."""
        ...

    async def remove_members(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None: ...

    async def get_points(self, meta: ModelMeta, name: str) -> list[tuple[str, float, float]] | None:
        """A geospatial set's (member, longitude, latitude) records, None where it has none."""
        ...

    async def add_points(self, meta: ModelMeta, name: str, points: Points) -> bool:
        """Add or move members of a geospatial set; True when this created the set."""
        ...

    async def remove_points(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None: ...

    async def delete_points(self, meta: ModelMeta, name: str) -> None:
        """Delete every member record of a geospatial set."""
        ...

    async def record_names(self, meta: ModelMeta, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` names of the model's records, in the store's order, after ``after``.

        A page at a time: each call with the last name of the previous page as
        ``after`` (None for the first) gives the next one, until an empty page.
        Every record present throughout is named exactly once; only names are read.
        """
        ...

    async def create_all(self, metas: Sequence[ModelMeta]) -> None:
        """Create what these models need where the store has a schema (SQL tables),
        and where repair records are kept."""
        ...

    # -- repair records: Redis keys a write could not update or delete ---------------

    async def add_repairs(self, keys: Sequence[bytes]) -> None:
        """Record ``keys`` (durably, once this returns), each with a new stamp."""
        ...

    async def repairs(self, limit: int) -> list[Repair]:
        """Up to ``limit`` repair records, in no particular order; one indexed read."""
        ...

    async def clear_repairs(self, records: Sequence[Repair]) -> None:
        """Delete these records where their stamp is unchanged; a key recorded again stays."""
        ...
