"""Single flight: concurrent reads of the same record share one fallback read.

Only forward in time: once a write of a record is acknowledged, a read of it
that starts later never joins a read that started before (``overtake``), whose
answer may be older than the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any


class Flights:
    """The single-flight half of ``Session``: reads under way, by (kind, record name)."""

    __slots__ = ()

    _flights: dict[Hashable, tuple[asyncio.Future[list[Any]], int]]

    async def coalesce(
        self,
        kind: Hashable,
        names: Sequence[str],
        read: Callable[[list[str]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``read(names)``, sharing reads of the same names already under way.

        Concurrent callers asking for a name being read wait for that read instead
        of starting another; one caller's cancellation leaves the read running for
        the others.
        """
        own = [name for name in dict.fromkeys(names) if (kind, name) not in self._flights]
        if own:
            task = asyncio.ensure_future(read(own))
            for index, name in enumerate(own):
                self._flights[(kind, name)] = (task, index)
            task.add_done_callback(lambda done: self._land(done, kind, own))
        pending = [self._flights[(kind, name)] for name in names]
        return [(await asyncio.shield(task))[index] for task, index in pending]

    async def lead(
        self,
        kind: Hashable,
        names: Sequence[str],
        read: Callable[[list[str]], Awaitable[list[Any]]],
    ) -> list[Any]:
        """``read(names)`` as a read others may join; alone if one of them is under way.

        For a reader whose read must start after something it just did (a fill
        lease taken): a read already under way may be older than that.
        """
        if any((kind, name) in self._flights for name in names):
            return await read(list(names))
        return await self.coalesce(kind, names, read)

    def overtake(self, kind: Hashable, names: Iterable[str]) -> None:
        """A write of ``names`` was acknowledged: reads under way may predate it.

        Their callers keep their answers; readers from now on start a read of
        their own instead of joining them.
        """
        flights = self._flights
        for name in names:
            flights.pop((kind, name), None)

    def _land(self, task: asyncio.Future[list[Any]], kind: Hashable, names: list[str]) -> None:
        for name in names:
            if self._flights.get((kind, name), (None,))[0] is task:
                del self._flights[(kind, name)]
        if not task.cancelled():
            task.exception()  # retrieved here, so a read nobody awaits any more is not logged
