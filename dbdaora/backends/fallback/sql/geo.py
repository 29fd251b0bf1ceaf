"""Geospatial sets in SQL: one row per member (key parts, member, longitude, latitude).

The model's table is the one ``tables.TableMap`` makes of its fields, with the
member in the primary key, as a sorted set's. ``SQLFallback`` takes these
methods from ``GeoRows``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from dbdaora.backends.fallback.protocol import Points
from dbdaora.exceptions import BackendError, failure_text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from dbdaora.backends.fallback.sql.tables import TableMap
    from dbdaora.meta import ModelMeta

_CHUNK = 500  # members in one IN (...), as the store's CHUNK


class GeoRows:
    """The geospatial methods of ``SQLFallback``, over its tables and transactions."""

    url: str

    if TYPE_CHECKING:

        async def _prepare(self, meta: ModelMeta) -> TableMap: ...

        def _transaction(
            self, *, write: bool = False
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...

        def _writing(
            self, names: Sequence[str]
        ) -> AbstractAsyncContextManager[AsyncConnection]: ...

        async def delete(self, meta: ModelMeta, name: str) -> None: ...

    @contextlib.asynccontextmanager
    async def _failing(self, operation: str) -> AsyncIterator[None]:
        """Driver, socket and timeout errors as one ``BackendError`` (see ``store._wrapped``)."""
        try:
            yield
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            raise BackendError(
                f"SQL {operation} failed: {failure_text(exc)}", url=self.url
            ) from exc

    @staticmethod
    def _columns(table: TableMap) -> tuple[sa.Column[Any], sa.Column[Any], sa.Column[Any]]:
        meta = table.meta
        assert meta.member is not None and meta.longitude is not None
        assert meta.latitude is not None
        columns = table.table.c
        return columns[meta.member.name], columns[meta.longitude.name], columns[meta.latitude.name]

    async def get_points(self, meta: ModelMeta, name: str) -> list[tuple[str, float, float]] | None:
        async with self._failing("SELECT points"):
            table = await self._prepare(meta)
            member, longitude, latitude = self._columns(table)
            async with self._transaction() as connection:
                rows = await connection.execute(
                    sa.select(member, longitude, latitude).where(table.key_clause(name))
                )
                points = [(text, float(lon), float(lat)) for text, lon, lat in rows]
        return points or None

    async def add_points(self, meta: ModelMeta, name: str, points: Points) -> bool:
        async with self._failing("upsert points"):
            table = await self._prepare(meta)
            member, longitude, latitude = self._columns(table)
            where = table.key_clause(name)
            keys = {
                column.name: value
                for column, value in zip(table.key_columns, table.key_values(name), strict=True)
            }
            rows = [
                {**keys, member.name: text, longitude.name: lon, latitude.name: lat}
                for text, lon, lat in points
            ]
            async with self._writing([name]) as connection:
                before = await connection.execute(
                    sa.select(sa.literal(1)).select_from(table.table).where(where).limit(1)
                )
                created = before.first() is None and bool(rows)
                if rows:
                    await connection.execute(table.upsert, rows)
        return created

    async def remove_points(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        if not members:
            return
        async with self._failing("DELETE points"):
            table = await self._prepare(meta)
            member, _, _ = self._columns(table)
            where = table.key_clause(name)
            async with self._writing([name]) as connection:
                for i in range(0, len(members), _CHUNK):
                    chunk = list(members[i : i + _CHUNK])
                    await connection.execute(sa.delete(table.table).where(where, member.in_(chunk)))

    async def delete_points(self, meta: ModelMeta, name: str) -> None:
        await self.delete(meta, name)
