"""``dbdaora check``: reach each store, say what answers and how fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from dbdaora.backends import mask_url, open_fallback, open_redis_side
from dbdaora.cli.raw import RawRedis
from dbdaora.exceptions import BackendError, cause


@attrs.frozen
class Answer:
    """One store that answered: its side, masked URL, what it is, and a round trip."""

    side: str
    url: str
    version: str
    round_trip: float | None


async def reach(side: str, url: str, call: Callable[[], Awaitable[Any]], wait: float) -> Any:
    """``call()`` within ``wait`` seconds; a failure is a ``BackendError`` naming the side,
    the masked URL and the cause, in one line."""
    try:
        return await asyncio.wait_for(call(), wait)
    except (BackendError, TimeoutError, OSError) as exc:
        reason = "timeout" if isinstance(exc, TimeoutError) else cause(exc)
        raise BackendError(f"{side} unreachable: {reason}", url=mask_url(url)) from exc


async def _round_trip(
    side: str, url: str, ping: Callable[[], Awaitable[None]], wait: float
) -> float:
    """Seconds of one ``ping()``, after a first one that opens the connection."""
    await reach(side, url, ping, wait)
    start = time.perf_counter()
    await reach(side, url, ping, wait)
    return time.perf_counter() - start


async def check_memory(url: str, wait: float) -> Answer:
    if urlsplit(url).scheme == "memory":
        return Answer("memory", url, "in-process store (memory://): nothing to reach", None)
    store = open_redis_side(url)
    raw = RawRedis(url, wait)
    try:
        seconds = await _round_trip("memory", url, store.ping, wait)
        version = await reach("memory", url, raw.version, wait)
    finally:
        await store.close()
        await raw.close()
    return Answer("memory", mask_url(url), f"Redis {version}", seconds)


async def check_fallback(url: str, wait: float) -> Answer:
    scheme = urlsplit(url).scheme
    if scheme == "memory":
        return Answer("fallback", url, "in-process dict (memory://): nothing to reach", None)
    store = open_fallback(url)
    try:
        seconds = await _round_trip("fallback", url, store.ping, wait)
    finally:
        await store.close()
    if scheme == "datastore":
        version = _datastore(url)
    else:
        version = await reach("fallback", url, lambda: _sql_version(url, wait), wait)
    return Answer("fallback", mask_url(url), version, seconds)


def _datastore(url: str) -> str:
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    namespace = options.get("namespace", ["(default)"])[-1]
    where = options.get("emulator_host", [None])[-1]
    place = f"emulator at {where}" if where else "Google Cloud"
    return f"Cloud Datastore ({place}), project {parts.netloc}, namespace {namespace}"


async def _sql_version(url: str, wait: float) -> str:
    # Imported here: the command line needs SQLAlchemy only for a SQL fallback.
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, connect_args={"timeout": wait})
    try:
        async with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                version = await connection.scalar(sa.text("SHOW server_version"))
                return f"PostgreSQL {version}"
            version = await connection.scalar(sa.text("SELECT sqlite_version()"))
            return f"SQLite {version}"
    except SQLAlchemyError as exc:
        raise BackendError(f"SQL version: {cause(exc)}", url=mask_url(url)) from exc
    finally:
        await engine.dispose()
