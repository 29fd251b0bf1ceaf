# mypy: disallow-untyped-calls=False
# (google-cloud-datastore ships py.typed but leaves most of its API unannotated.)
"""``datastore://PROJECT?namespace=NS``: Google Cloud Datastore as the fallback.

URL options (all optional): ``namespace``; ``pool_size``, the threads that run
the synchronous client (default 8); ``timeout``, seconds one store call may take
with all its RPCs (default 5); ``emulator_host``, ``host:port`` of an emulator,
which wins over ``DATASTORE_EMULATOR_HOST``. Without either, the client talks to
Google with the default credentials.

Every call runs in the store's own bounded thread pool, so the event loop never
waits on the network, and the store works from several event loops in turn.
One deadline covers all the RPCs of a call and the client's own retries are
off, so a hung server costs a request ``timeout`` seconds at most. Sorted-set
changes read, modify and write the set in a transaction, retried while
Datastore reports contention, so concurrent adds lose no member.

The entity layout is dbdaora 0.27's; see ``datastore_layout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from google.api_core.exceptions import (
    Aborted,
    GoogleAPIError,
)
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError
from google.cloud import datastore

from dbdaora.backends.fallback.datastore import repairs
from dbdaora.backends.fallback.datastore.geo import GeoEntities
from dbdaora.backends.fallback.datastore.layout import (
    FlagLayout,
    HashLayout,
    SetLayout,
    key_for,
    names_after,
)
from dbdaora.backends.fallback.datastore.rpc import (
    Deadline,
    UnansweredError,
    commit,
)
from dbdaora.backends.fallback.protocol import Members, Repair
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, ConfigurationError, OutcomeUnknownError, failure_text
from dbdaora.meta import CorruptData, ModelMeta, StoreKind

T = TypeVar("T")

LOOKUP_LIMIT = 1000
COMMIT_LIMIT = 500
# The kind the ping looks up: no model has it, so the lookup finds nothing, cheaply.
PING_KIND = "DbdaoraPing"
EMULATOR_VARIABLE = "DATASTORE_EMULATOR_HOST"
_OPTIONS = frozenset({"namespace", "pool_size", "timeout", "emulator_host"})
_DRIVER_ERRORS = (GoogleAPIError, GoogleAuthError, OSError)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _positive(
    url: str, options: dict[str, str], name: str, parse: Callable[[str], float], default: float
) -> float:
    text = options.get(name)
    if text is None:
        return default
    try:
        value = parse(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigurationError(f"{url!r}: {name} must be a positive number, got {text!r}")
    return value


class DatastoreFallback(GeoEntities):
    """The fallback on Google Cloud Datastore (or its emulator)."""

    def __init__(self, url: str) -> None:
        self.url = mask_url(url)
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = set(query) - _OPTIONS
        if not parts.netloc or unknown:
            raise ConfigurationError(
                f"bad Datastore URL {self.url!r}: expected datastore://PROJECT"
                f"?namespace=NS with options {sorted(_OPTIONS)}"
                + (f"; unknown {sorted(unknown)}" if unknown else "")
            )
        options = {name: values[-1] for name, values in query.items()}
        self.project = parts.netloc
        self.namespace = options.get("namespace") or None
        self._pool_size = int(_positive(self.url, options, "pool_size", int, 8))
        self._timeout = _positive(self.url, options, "timeout", float, 5.0)
        self._emulator_host = options.get("emulator_host") or None
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._client: datastore.Client | None = None
        self._hash_layouts: dict[type, HashLayout | FlagLayout] = {}
        self._set_layouts: dict[type, SetLayout] = {}

    # -- plumbing -------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._pool_size, thread_name_prefix="dbdaora-datastore"
                )
            return self._pool

    def _datastore(self) -> datastore.Client:
        """The client, made on first use in a pool thread (finding credentials may do I/O)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _connect(self) -> datastore.Client:
        if self._emulator_host is None:
            client = datastore.Client(project=self.project, namespace=self.namespace)
        else:
            # The client rejects explicit credentials when the variable is set.
            anonymous = None if os.environ.get(EMULATOR_VARIABLE) else AnonymousCredentials()
            client = datastore.Client(
                project=self.project, namespace=self.namespace, credentials=anonymous
            )
            client.base_url = f"http://{self._emulator_host}"
        # Made here, under the lock, so that threads share one gRPC channel.
        client._datastore_api  # noqa: B018 - the property opens the channel
        return client

    async def _run(
        self, action: str, work: Callable[[Deadline], T], names: Sequence[str] = ()
    ) -> T:
        """Run ``work`` in the pool with a fresh deadline; driver errors become BackendError.

        ``names`` are the records a write's commit touches: a commit that got no
        answer raises ``OutcomeUnknownError`` naming them. Any other error means
        nothing was written.
        """
        deadline = Deadline(self._timeout)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), work, deadline)
        except UnansweredError as exc:
            raise OutcomeUnknownError(
                f"Datastore {action}: commit got no answer: {exc}", url=self.url, unknown=names
            ) from exc.__cause__
        except CorruptData as exc:
            raise BackendError(
                f"Datastore {action}: unreadable entity: {exc}", url=self.url
            ) from exc
        except _DRIVER_ERRORS as exc:
            detail = failure_text(exc)
            raise BackendError(f"Datastore {action} failed: {detail}", url=self.url) from exc

    async def close(self) -> None:
        """Close the client and shut the pool down; a later call opens them again."""
        with self._lock:
            pool, client = self._pool, self._client
            self._pool = self._client = None
        if pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, _shut, pool, client)

    async def create_all(self, metas: Sequence[ModelMeta]) -> None:
        """Nothing to create: Datastore kinds need no schema, and entities bring their own."""
        return None

    def _hash(self, meta: ModelMeta) -> HashLayout | FlagLayout:
        """The layout of a model with one record per entity: a hash's, or a flag's."""
        layout = self._hash_layouts.get(meta.model)
        if layout is None:
            kind = FlagLayout if meta.kind is StoreKind.FLAG else HashLayout
            layout = self._hash_layouts[meta.model] = kind(meta)
        return layout

    def _set(self, meta: ModelMeta) -> SetLayout:
        layout = self._set_layouts.get(meta.model)
        if layout is None:
            layout = self._set_layouts[meta.model] = SetLayout(meta)
        return layout

    def _key(self, meta: ModelMeta, name: str) -> datastore.Key:
        return key_for(meta, name, self.project, self.namespace)

    # -- FallbackStore ------------------------------------------------------------------

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        layout = self._hash(meta)
        keys = [self._key(meta, name) for name in dict.fromkeys(names)]

        def lookup(chunk: Sequence[datastore.Key], deadline: Deadline) -> dict[str, Any]:
            found = self._datastore().get_multi(chunk, **deadline.rpc())
            return {record.key.name: layout.from_entity(record) for record in found}

        parts = await asyncio.gather(
            *(
                self._run("lookup", functools.partial(lookup, chunk))
                for chunk in _chunks(keys, LOOKUP_LIMIT)
            )
        )
        found = {name: entity for part in parts for name, entity in part.items()}
        return [found.get(name) for name in names]

    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None:
        layout = self._hash(meta)
        # One mutation per key: a commit may not touch an entity twice; the last wins.
        latest = dict(zip(names, entities, strict=True))
        records = [
            layout.to_entity(self._key(meta, name), entity) for name, entity in latest.items()
        ]

        def put(chunk: Sequence[datastore.Entity], deadline: Deadline) -> None:
            commit(lambda: self._datastore().put_multi(chunk, **deadline.rpc()))

        chunks = _chunks(records, COMMIT_LIMIT)
        named = _chunks(list(latest), COMMIT_LIMIT)
        # Every chunk is one commit, sent together: each ends known written,
        # known refused, or unknown, and the error says which records are which.
        outcomes = await asyncio.gather(
            *(
                self._run("put", functools.partial(put, chunk), chunk_names)
                for chunk, chunk_names in zip(chunks, named, strict=True)
            ),
            return_exceptions=True,
        )
        failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        if not failures:
            return
        for failure in failures:
            if not isinstance(failure, BackendError):
                raise failure
        first = failures[0]
        assert isinstance(first, BackendError)
        written = [
            name
            for outcome, chunk_names in zip(outcomes, named, strict=True)
            if not isinstance(outcome, BaseException)
            for name in chunk_names
        ]
        unknown = [name for failure in failures for name in getattr(failure, "unknown", ())]
        error = OutcomeUnknownError if unknown else BackendError
        counted = f"; {len(failures)} of {len(chunks)} commits failed" if len(chunks) > 1 else ""
        raise error(
            f"{first.message}{counted}",
            url=self.url,
            written=written,
            unknown=unknown,
        ) from first.__cause__

    async def delete(self, meta: ModelMeta, name: str) -> None:
        key = self._key(meta, name)
        await self._run(
            "delete",
            lambda deadline: commit(lambda: self._datastore().delete(key, **deadline.rpc())),
            [name],
        )

    async def record_names(self, meta: ModelMeta, after: str | None, limit: int) -> list[str]:
        def page(deadline: Deadline) -> list[str]:
            if meta.kind is StoreKind.GEOSPATIAL:  # an entity per member: names cut to sets'
                return self._set_names(meta, after, limit, deadline)
            return names_after(self._datastore(), meta, after, limit, deadline.rpc())

        return await self._run("query names", page)

    async def ping(self) -> None:
        """A lookup of a key no model uses: one cheap RPC."""
        key = datastore.Key(PING_KIND, "ping", project=self.project, namespace=self.namespace)
        await self._run("ping", lambda deadline: self._datastore().get(key, **deadline.rpc()))

    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        layout, key = self._set(meta), self._key(meta, name)

        def lookup(deadline: Deadline) -> list[tuple[str, float]] | None:
            record = self._datastore().get(key, **deadline.rpc())
            return None if record is None else layout.members(record)

        return await self._run("lookup", lookup)

    async def add_members(
        self, meta: ModelMeta, name: str, members: Members, max_size: int | None
    ) -> bool:
        layout, key = self._set(meta), self._key(meta, name)

        def change(current: datastore.Entity | None) -> datastore.Entity:
            pairs = [] if current is None else layout.members(current)
            return layout.to_entity(key, layout.merged(pairs, members, (), max_size))

        return await self._run(
            "add_members", lambda deadline: self._transact(key, change, deadline), [name]
        )

    async def remove_members(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        layout, key = self._set(meta), self._key(meta, name)

        def change(current: datastore.Entity | None) -> datastore.Entity | None:
            pairs = [] if current is None else layout.members(current)
            left = layout.merged(pairs, (), members, None)
            # An emptied set is deleted, as Redis drops an empty sorted set.
            return layout.to_entity(key, left) if left else None

        await self._run(
            "remove_members", lambda deadline: self._transact(key, change, deadline), [name]
        )

    # -- repair records (``datastore/repairs.py``) -----------------------------------------

    async def add_repairs(self, keys: Sequence[bytes]) -> None:
        def add(chunk: Sequence[bytes], deadline: Deadline) -> None:
            repairs.add(self._datastore(), chunk, deadline.rpc)

        for chunk in _chunks(keys, COMMIT_LIMIT):
            await self._run("record repairs", functools.partial(add, chunk))

    async def repairs(self, limit: int) -> list[Repair]:
        return await self._run(
            "query repairs", lambda deadline: repairs.read(self._datastore(), limit, deadline.rpc)
        )

    async def clear_repairs(self, records: Sequence[Repair]) -> None:
        def clear(chunk: Sequence[Repair], deadline: Deadline) -> None:
            repairs.clear(self._datastore(), chunk, deadline.rpc)

        for chunk in _chunks(records, COMMIT_LIMIT):
            await self._run("clear repairs", functools.partial(clear, chunk))

    # -- transactions ----------------------------------------------------------------

    def _transact(
        self,
        key: datastore.Key,
        change: Callable[[datastore.Entity | None], datastore.Entity | None],
        deadline: Deadline,
    ) -> bool:
        """Read one entity, put ``change(it)`` (delete on None), all in one transaction.

        Retried with jittered backoff while Datastore aborts it for contention.
        Returns whether the entity was absent before.
        """
        client = self._datastore()
        attempt = 0
        while True:
            transaction = client.transaction()
            try:
                transaction.begin(**deadline.rpc())
                current = client.get(key, transaction=transaction, **deadline.rpc())
                replacement = change(current)
                if replacement is None:
                    transaction.delete(key)
                else:
                    transaction.put(replacement)
                commit(functools.partial(transaction.commit, **deadline.rpc()))
                return current is None
            except Aborted:
                _rollback(transaction, deadline)
                time.sleep(min(deadline.left(), random.uniform(0, 0.01 * 2 ** min(attempt, 6))))
                attempt += 1
            except BaseException:
                _rollback(transaction, deadline)
                raise


def _rollback(transaction: Any, deadline: Deadline) -> None:
    """Release a begun transaction's locks; best effort, the caller raises the real error."""
    if transaction.id is not None and deadline.left() > 0:
        with contextlib.suppress(Exception):
            transaction.rollback(**deadline.rpc())


def _shut(pool: ThreadPoolExecutor, client: datastore.Client | None) -> None:
    pool.shutdown(wait=True)
    if client is not None:
        # Client.close() closes only its HTTP session, not the gRPC channel.
        client._datastore_api.transport.close()
        client.close()


if TYPE_CHECKING:
    from dbdaora.backends.fallback.protocol import FallbackStore

    _conforms: type[FallbackStore] = DatastoreFallback
