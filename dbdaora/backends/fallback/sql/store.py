"""SQL databases as the fallback, through SQLAlchemy 2's asyncio engine.

``sqlite+aiosqlite:///path.db`` (embedded, no server) and
``postgresql+asyncpg://user@host/db``. One table per model (see ``sql_tables``),
created on first use when missing and checked against the model when present.

The engine's connection pool belongs to the event loop that opened it: a store
used from a new loop (``asyncio.run`` called again) opens a new engine there, and
each engine is disposed of when its loop shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.log import InstanceLogger
from sqlalchemy.schema import CreateIndex, CreateTable

from dbdaora.backends.fallback.protocol import Members, Repair
from dbdaora.backends.fallback.sql.geo import GeoRows
from dbdaora.backends.fallback.sql.tables import INSERTS, REPAIRS, TableMap, repair_table
from dbdaora.backends.loops import close_with_loop
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, ConfigurationError, OutcomeUnknownError, failure_text
from dbdaora.meta import ModelMeta

P = ParamSpec("P")
T = TypeVar("T")

CONNECT_TIMEOUT = 5.0
CHUNK = 500  # keys in one IN (...), well under every driver's parameter limit

_WRITE = "dbdaora_write"
_DRIVER_ERRORS = (SQLAlchemyError, OSError, TimeoutError)
# SQLSTATE classes of a server that may have lost the transaction's fate with it:
# connection exception, insufficient resources, operator intervention (shutdown),
# system error, internal error. Any other error answering a COMMIT refused it.
_UNSETTLED_CLASSES = frozenset({"08", "53", "57", "58", "XX"})

Method = Callable[Concatenate["SQLFallback", P], Coroutine[Any, Any, T]]


def _wrapped(operation: str) -> Callable[[Method[P, T]], Method[P, T]]:
    """Turn driver, socket and timeout errors into one ``BackendError`` naming the masked URL."""

    def decorate(method: Method[P, T]) -> Method[P, T]:
        @functools.wraps(method)
        async def call(self: SQLFallback, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await method(self, *args, **kwargs)
            except _DRIVER_ERRORS as exc:
                # Raised before any COMMIT was sent, or a COMMIT refused: nothing written.
                detail = failure_text(exc)
                raise BackendError(f"SQL {operation} failed: {detail}", url=self.url) from exc

        return call

    return decorate


def _refused(exc: BaseException) -> bool:
    """Whether an error answering a COMMIT says that the transaction did not commit.

    SQLite is a library call: its error is its answer. A server's error carries a
    SQLSTATE; one of a lost connection, a shutdown or an internal failure does not
    settle it, nor does a timeout, a socket error or a connection SQLAlchemy
    found broken.
    """
    if not isinstance(exc, DBAPIError) or exc.connection_invalidated:
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate[:2] not in _UNSETTLED_CLASSES


def _chunks(items: Sequence[T]) -> list[Sequence[T]]:
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


def _same(value: Any) -> Any:
    return value


class _QuietCancelledReset(logging.Filter):
    """Drops the pool's "Exception during reset" error when the reset was cancelled.

    A task cancelled during a query (as ``asyncio.run`` cancels what is left at
    exit) returns its connection in the middle of the cancellation; the pool's
    rollback is cancelled too, and it discards the connection. Nothing is left to
    do, and the traceback it logs only alarms.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


_QUIET_CANCELLED_RESET = _QuietCancelledReset()


def _take_over_begin(engine: AsyncEngine) -> None:
    """Make SQLite write transactions whole: BEGIN IMMEDIATE before their first statement.

    The sqlite3 driver otherwise begins only before the first write, so a read
    and the write after it would not be one transaction; IMMEDIATE takes the write
    lock up front, so two writers wait for each other instead of failing. Reads
    run without BEGIN: each is one SELECT, whole by itself.
    """

    @sa.event.listens_for(engine.sync_engine, "connect")
    def no_driver_begin(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine.sync_engine, "begin")
    def begin(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(_WRITE, False):
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@attrs.define
class _Bound:
    """What belongs to one event loop: the engine, and the lock of table checks."""

    loop: asyncio.AbstractEventLoop
    engine: AsyncEngine
    lock: asyncio.Lock
    closer: AsyncGenerator[None, None]


class SQLFallback(GeoRows):
    """The fallback on a SQL database (SQLite through aiosqlite, PostgreSQL through asyncpg).

    Args:
        url: a SQLAlchemy async URL; a password in it never shows in errors.
        connect_timeout: seconds to wait for a connection (SQLite: for a lock)
            before failing with ``BackendError``.
        engine_options: passed to ``create_async_engine``.
    """

    def __init__(
        self, url: str, *, connect_timeout: float = CONNECT_TIMEOUT, **engine_options: Any
    ) -> None:
        self._dsn = url
        try:
            self.url = mask_url(url)
            dialect_class = make_url(url).get_dialect()
        except (ValueError, ArgumentError, NoSuchModuleError) as exc:
            raise ConfigurationError(f"bad SQL URL: {exc}") from exc
        if dialect_class.name not in INSERTS or not dialect_class.is_async:
            raise ConfigurationError(
                f"{self.url!r}: the SQL fallback supports {sorted(INSERTS)} through an "
                f"asyncio driver, not {dialect_class.name}+{dialect_class.driver}"
            )
        dialect_class.import_dbapi()  # a missing driver fails here, at configuration
        self._dialect: Dialect = dialect_class()
        self._options: dict[str, Any] = {
            # A server may have dropped pooled connections (a restart); a file cannot.
            "pool_pre_ping": dialect_class.name != "sqlite",
            "hide_parameters": True,
            "json_serializer": _same,
            "json_deserializer": _same,
            **engine_options,
            # asyncpg: seconds to connect; sqlite3: seconds to wait for a lock.
            "connect_args": {"timeout": connect_timeout, **engine_options.get("connect_args", {})},
        }
        self._metadata = sa.MetaData()
        self._repairs = repair_table(self._metadata)
        self._tables: dict[type, TableMap] = {}
        self._ready: set[str] = set()
        self._bound: _Bound | None = None

    # -- engine and tables -------------------------------------------------------

    def _for_loop(self) -> _Bound:
        loop = asyncio.get_running_loop()
        bound = self._bound
        if bound is None or bound.loop is not loop:
            engine = create_async_engine(self._dsn, **self._options)
            pool_logger = engine.pool.logger
            if isinstance(pool_logger, InstanceLogger):  # with echo_pool
                pool_logger = pool_logger.logger
            pool_logger.addFilter(_QUIET_CANCELLED_RESET)  # added once: filters are a set
            if engine.dialect.name == "sqlite":
                _take_over_begin(engine)
            bound = _Bound(loop, engine, asyncio.Lock(), close_with_loop(engine.dispose))
            self._bound = bound
            # A new engine may see a new database (SQLite in memory): check tables again.
            self._ready = set()
        return bound

    @contextlib.asynccontextmanager
    async def _transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        async with self._for_loop().engine.connect() as connection:
            if write:
                await connection.execution_options(**{_WRITE: True})
            async with connection.begin():
                yield connection

    @contextlib.asynccontextmanager
    async def _writing(self, names: Sequence[str]) -> AsyncIterator[AsyncConnection]:
        """A write transaction of the records ``names``, committed at the end.

        An error before the COMMIT rolls it back and propagates: nothing was
        written. A COMMIT with no answer raises ``OutcomeUnknownError`` naming
        ``names``.
        """
        async with self._for_loop().engine.connect() as connection:
            await connection.execution_options(**{_WRITE: True})
            transaction = await connection.begin()
            try:
                yield connection
            except BaseException:
                # Best effort: a lost connection ends the transaction without COMMIT anyway.
                with contextlib.suppress(*_DRIVER_ERRORS):
                    await transaction.rollback()
                raise
            try:
                await transaction.commit()
            except _DRIVER_ERRORS as exc:
                if _refused(exc):
                    raise
                raise OutcomeUnknownError(
                    f"SQL COMMIT got no answer: {str(exc) or type(exc).__name__}",
                    url=self.url,
                    unknown=names,
                ) from exc

    def _table(self, meta: ModelMeta) -> TableMap:
        """The model's table and conversions, built once per model."""
        found = self._tables.get(meta.model)
        if found is None:
            found = self._tables[meta.model] = TableMap(meta, self._metadata, self._dialect)
        return found

    async def _prepare(self, meta: ModelMeta) -> TableMap:
        """The model's table, created when missing and checked once per engine."""
        table = self._table(meta)
        name = table.table.name
        if name in self._ready:
            return table
        async with self._for_loop().lock:
            if name not in self._ready:
                async with self._transaction(write=True) as connection:
                    await self._create_or_check(connection, table)
                self._ready.add(name)
        return table

    async def _create_or_check(self, connection: AsyncConnection, table: TableMap) -> None:
        await connection.execute(CreateTable(table.table, if_not_exists=True))
        for index in table.table.indexes:
            await connection.execute(CreateIndex(index, if_not_exists=True))

        def reflect(sync: sa.Connection) -> tuple[list[Any], list[str]]:
            inspector = sa.inspect(sync)
            name = table.table.name
            columns = inspector.get_columns(name)
            return columns, inspector.get_pk_constraint(name)["constrained_columns"]

        columns, primary_key = await connection.run_sync(reflect)
        problems = table.problems(columns, primary_key)
        if problems:
            meta = table.meta
            raise ConfigurationError(
                f"{meta.name}: table {table.table.name!r} does not match the model: "
                f"{'; '.join(problems)}. Migrate the table, or change the model back",
                model=meta.name,
            )

    @_wrapped("create tables")
    async def create_all(self, metas: Sequence[ModelMeta]) -> None:
        """Create each model's table where missing, check the ones that exist; and
        the table of repair records."""
        for meta in metas:
            await self._prepare(meta)
        await self._prepare_repairs()

    async def close(self) -> None:
        bound, self._bound = self._bound, None
        self._ready = set()
        if bound is not None and bound.loop is asyncio.get_running_loop():
            await bound.closer.aclose()

    @_wrapped("SELECT 1")
    async def ping(self) -> None:
        async with self._for_loop().engine.connect() as connection:
            await connection.execute(sa.text("SELECT 1"))

    # -- hashes ------------------------------------------------------------------

    @_wrapped("SELECT")
    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        table = self._table(meta)
        keys = [table.key_values(name) for name in names]
        found: dict[str, Any] = {}
        if keys:
            await self._prepare(meta)
            async with self._transaction() as connection:
                for chunk in _chunks(keys):
                    rows = await connection.execute(
                        sa.select(table.table).where(table.keys_in(chunk))
                    )
                    for row in rows:
                        found[table.name_of(row)] = table.entity(row)
        return [found.get(name) for name in names]

    @_wrapped("upsert")
    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None:
        table = self._table(meta)
        rows = [table.row(entity) for entity in entities]
        if rows:
            await self._prepare(meta)
            async with self._writing(names) as connection:
                await connection.execute(table.upsert, rows)

    @_wrapped("DELETE")
    async def delete(self, meta: ModelMeta, name: str) -> None:
        table = self._table(meta)
        where = table.key_clause(name)
        await self._prepare(meta)
        async with self._writing([name]) as connection:
            await connection.execute(sa.delete(table.table).where(where))

    @_wrapped("SELECT names")
    async def record_names(self, meta: ModelMeta, after: str | None, limit: int) -> list[str]:
        table = await self._prepare(meta)
        async with self._transaction() as connection:
            return table.names(await connection.execute(table.names_after(after, limit)))

    # -- sorted sets -------------------------------------------------------------

    @_wrapped("SELECT members")
    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        table = self._table(meta)
        where = table.key_clause(name)
        await self._prepare(meta)
        async with self._transaction() as connection:
            rows = await connection.execute(
                sa.select(table.member, table.score).where(where).order_by(table.score, table.tie)
            )
            members = [(table.member_text(member), score) for member, score in rows]
        return members or None

    @_wrapped("upsert members")
    async def add_members(
        self, meta: ModelMeta, name: str, members: Members, max_size: int | None
    ) -> bool:
        table = self._table(meta)
        where = table.key_clause(name)
        keys = {
            column.name: value
            for column, value in zip(table.key_columns, table.key_values(name), strict=True)
        }
        rows = [
            {**keys, table.member.name: table.member_value(member), table.score.name: score}
            for member, score in members
        ]
        await self._prepare(meta)
        async with self._writing([name]) as connection:
            before = await connection.execute(
                sa.select(sa.literal(1)).select_from(table.table).where(where).limit(1)
            )
            created = before.first() is None and bool(rows)
            if rows:
                await connection.execute(table.upsert, rows)
            if max_size is not None:
                beyond = (
                    sa.select(table.member)
                    .where(where)
                    .order_by(table.score.desc(), table.tie.desc())
                    .offset(max_size)
                )
                await connection.execute(
                    sa.delete(table.table).where(where, table.member.in_(beyond))
                )
        return created

    @_wrapped("DELETE members")
    async def remove_members(self, meta: ModelMeta, name: str, members: Sequence[str]) -> None:
        table = self._table(meta)
        where = table.key_clause(name)
        values = [table.member_value(member) for member in members]
        if not values:
            return
        await self._prepare(meta)
        async with self._writing([name]) as connection:
            for chunk in _chunks(values):
                await connection.execute(
                    sa.delete(table.table).where(where, table.member.in_(chunk))
                )

    # -- repair records ----------------------------------------------------------

    async def _prepare_repairs(self) -> sa.Table:
        if REPAIRS not in self._ready:
            async with self._for_loop().lock:
                if REPAIRS not in self._ready:
                    async with self._transaction(write=True) as connection:
                        await connection.execute(CreateTable(self._repairs, if_not_exists=True))
                    self._ready.add(REPAIRS)
        return self._repairs

    @_wrapped("record repairs")
    async def add_repairs(self, keys: Sequence[bytes]) -> None:
        table = await self._prepare_repairs()
        stamp = int.from_bytes(os.urandom(8)) >> 1  # a positive BIGINT
        rows = [{"key": key, "stamp": stamp} for key in dict.fromkeys(keys)]
        if rows:
            insert = INSERTS[self._dialect.name](table)
            upsert = insert.on_conflict_do_update(
                index_elements=[table.c.key], set_={"stamp": insert.excluded.stamp}
            )
            async with self._writing(()) as connection:
                await connection.execute(upsert, rows)

    @_wrapped("SELECT repairs")
    async def repairs(self, limit: int) -> list[Repair]:
        table = await self._prepare_repairs()
        async with self._transaction() as connection:
            rows = await connection.execute(sa.select(table.c.key, table.c.stamp).limit(limit))
            return [(bytes(key), stamp) for key, stamp in rows]

    @_wrapped("DELETE repairs")
    async def clear_repairs(self, records: Sequence[Repair]) -> None:
        table = await self._prepare_repairs()
        if records:
            async with self._writing(()) as connection:
                for chunk in _chunks(records):
                    pairs = sa.tuple_(table.c.key, table.c.stamp).in_(list(chunk))
                    await connection.execute(sa.delete(table).where(pairs))


if TYPE_CHECKING:
    from dbdaora.backends.fallback.protocol import FallbackStore

    _conforms: type[FallbackStore] = SQLFallback
