# mypy: disallow-untyped-calls=False
# (google-cloud-datastore ships py.typed but leaves most of its API unannotated.)
"""Geospatial sets in Datastore: one entity per member, as dbdaora 0.27 kept them.

Kind ``key_name``; key name the set's record name and the member joined with
``:`` (a record name holds no ``:`` beyond its key parts', so the set's members
are exactly the keys under ``<name>:``); properties ``member``, ``latitude``
and ``longitude``, excluded from indexes as 0.27 did. A set's members are read
with a key-range query. The set names are listed from keys-only queries in key
order, so in the order of their ``<name>:`` ranges (``10`` before ``1``, as
``10:`` sorts before ``1:``). ``DatastoreFallback`` takes these methods from
``GeoEntities``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from google.cloud.datastore import Entity, Key
from google.cloud.datastore.query import PropertyFilter

from dbdaora.backends.fallback.datastore import rpc
from dbdaora.backends.fallback.datastore.layout import key_for
from dbdaora.backends.fallback.protocol import Points
from dbdaora.meta import CorruptData

if TYPE_CHECKING:
    from google.cloud import datastore

    from dbdaora.meta import ModelMeta

T = TypeVar("T")

MEMBER, LATITUDE, LONGITUDE = "member", "latitude", "longitude"
_COMMIT_LIMIT = 500  # mutations in one commit, as the store's COMMIT_LIMIT


class GeoEntities:
    """The geospatial methods of ``DatastoreFallback``, over its client and deadlines."""

    project: str
    namespace: str | None

    if TYPE_CHECKING:

        def _datastore(self) -> datastore.Client: ...

        async def _run(
            self, action: str, work: Callable[[Any], T], names: Sequence[str] = ()
        ) -> T: ...

    def _point_key(self, meta: ModelMeta, name: str, member: str) -> Key:
        return key_for(meta, f"{name}:{member}", self.project, self.namespace)

    def _members_query(self, meta: ModelMeta, name: str) -> Any:
        """A query of the entities under ``<name>:``: one key range."""
        query = self._datastore().query(kind=meta.key_name)
        for operator, bound in ((">=", f"{name}:"), ("<", f"{name};")):
            query.add_filter(filter=PropertyFilter("__key__", operator, self._bound(meta, bound)))
        return query

    def _bound(self, meta: ModelMeta, name: str) -> Key:
        return Key(meta.key_name, name, project=self.project, namespace=self.namespace)

    def _set_names(
        self, meta: ModelMeta, after: str | None, limit: int, deadline: rpc.Deadline
    ) -> list[str]:
        """Up to ``limit`` set names after ``after``, each once, in key order.

        Each keys-only query reads up to ``limit`` member keys from a bound; each
        key name is cut to its set's name (its first key parts), and the next
        query starts past the last set seen, at ``<name>;``, skipping the rest of
        its members.
        """
        parts = len(meta.key_fields)
        names: list[str] = []
        start = None if after is None else f"{after};"
        while len(names) < limit:
            query = self._datastore().query(kind=meta.key_name)
            query.keys_only()
            query.order = ["__key__"]
            if start is not None:
                query.add_filter(filter=PropertyFilter("__key__", ">=", self._bound(meta, start)))
            keys = [found.key.name for found in query.fetch(limit=limit, **deadline.rpc())]
            # Entities with a numeric id (no record of dbdaora's) have no name: left out.
            for name in (":".join(key.split(":")[:parts]) for key in keys if key):
                if not names or names[-1] != name:
                    names.append(name)
            if len(keys) < limit or not names:
                break
            start = f"{names[-1]};"
        return names[:limit]

    async def get_points(self, meta: ModelMeta, name: str) -> list[tuple[str, float, float]] | None:
        def read(deadline: Any) -> list[tuple[str, float, float]]:
            points = []
            for record in self._members_query(meta, name).fetch(**deadline.rpc()):
                member = record.get(MEMBER)
                lon, lat = record.get(LONGITUDE), record.get(LATITUDE)
                if isinstance(member, bytes):
                    member = member.decode()
                if not isinstance(member, str) or not all(
                    isinstance(value, (int, float)) and not isinstance(value, bool)
                    for value in (lon, lat)
                ):
                    raise CorruptData(f"{meta.name}: bad geospatial entity {record.key.name!r}")
                points.append((member, float(lon), float(lat)))
            return points

        return await self._run("query points", read) or None

    async def add_points(self, meta: ModelMeta, name: str, points: Points) -> bool:
        records = []
        for member, lon, lat in points:
            key = key_for(meta, f"{name}:{member}", self.project, self.namespace)
            record = Entity(key, exclude_from_indexes=(MEMBER, LATITUDE, LONGITUDE))
            record.update({MEMBER: member, LATITUDE: lat, LONGITUDE: lon})
            records.append(record)

        def put(deadline: Any) -> bool:
            query = self._members_query(meta, name)
            query.keys_only()
            created = not list(query.fetch(limit=1, **deadline.rpc()))
            self._commit_chunks(
                records, lambda chunk: self._datastore().put_multi(chunk, **deadline.rpc())
            )
            return created and bool(records)

        return await self._run("put points", put, [name])

    async def remove_points(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        keys = [
            key_for(meta, f"{name}:{member}", self.project, self.namespace) for member in members
        ]

        def delete(deadline: Any) -> None:
            self._commit_chunks(
                keys, lambda chunk: self._datastore().delete_multi(chunk, **deadline.rpc())
            )

        await self._run("delete points", delete, [name])

    async def delete_points(self, meta: ModelMeta, name: str) -> None:
        def delete(deadline: Any) -> None:
            query = self._members_query(meta, name)
            query.keys_only()
            keys = [record.key for record in query.fetch(**deadline.rpc())]
            self._commit_chunks(
                keys, lambda chunk: self._datastore().delete_multi(chunk, **deadline.rpc())
            )

        await self._run("delete points", delete, [name])

    def _commit_chunks(self, items: Sequence[T], commit: Callable[[Sequence[T]], object]) -> None:
        """``commit`` each chunk of ``items`` a commit may hold, one after another."""
        for i in range(0, len(items), _COMMIT_LIMIT):
            chunk = items[i : i + _COMMIT_LIMIT]
            rpc.commit(functools.partial(commit, chunk))
