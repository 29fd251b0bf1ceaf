"""The link to one Redis server (``redis://``, ``rediss://``, ``unix://``).

Auto-pipelined, every command of the store shares one connection (see
``multiplex``); otherwise each call takes a connection of redis-py's blocking
pool. Scripts run by their SHA1 (EVALSHA) and are loaded on the first NOSCRIPT
answer, after a restart or a SCRIPT FLUSH.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from dbdaora.backends.redis.wire.link import Calls, Lua, PerLoop, failed
from dbdaora.backends.redis.wire.multiplex import Multiplexer
from dbdaora.backends.redis.wire.tracking import Invalidations, Tracking
from dbdaora.backends.redis.wire.transport import Direct, Operation, Transport
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, BadDataError, ConfigurationError

# Seconds a connection owing replies may hear nothing before it is replaced;
# a URL's or the options' socket_timeout wins.
STALL_SECONDS = 5.0

# What the driver raises when the server cannot be reached or answers an error.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)


def with_defaults(options: dict[str, Any]) -> dict[str, Any]:
    """dbdaora's redis-py options for a server's connections, under ``options``."""
    # One retry, at once: it reconnects when the server dropped a connection
    # (a restart); a longer policy would only stretch an outage past the
    # session's memory_timeout. Auto-pipelined, the store keeps one connection;
    # without it each call holds one of at most 50, so callers beyond 50 wait
    # for one (within memory_timeout) rather than fail or open hundreds.
    return {
        "protocol": 2,
        "decode_responses": False,
        "retry": Retry(NoBackoff(), 1),
        "max_connections": 50,
        **options,
    }


def _evalsha(script: Lua, keys: list[bytes], args: list[Any]) -> Operation:
    return lambda target: target.evalsha(script.sha, len(keys), *keys, *args)


def _script_load(script: Lua) -> Operation:
    return lambda target: target.script_load(script.source)


class NodeLink:
    """The connection side of ``RedisStore``: a transport per event loop to one server.

    It holds the client's options and the transports; it must not hold store
    policy (which commands an operation sends, the lease protocol).

    Args:
        url: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``unix://``.
        autopipeline: multiplex every command on one connection, rather than one
            pooled connection per call.
        options: redis-py client options; they win over the URL's and dbdaora's.

    Raises:
        ConfigurationError: the URL does not parse.
    """

    def __init__(self, url: str, *, autopipeline: bool, options: dict[str, Any]) -> None:
        self.url = mask_url(url)
        self._dsn = url
        self._autopipeline = autopipeline
        self._options = self._client_options(options)
        self.tracking = Tracking()
        self._transports = PerLoop(self._open)

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_url(self._dsn)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {self.url!r}: {exc}") from exc
        return with_defaults(options)

    def _open(self) -> Transport:
        if self._autopipeline:
            pool = ConnectionPool.from_url(self._dsn, **self._options)
            stall = {**parse_url(self._dsn), **self._options}.get("socket_timeout")
            return Multiplexer(
                pool.make_connection, stall_timeout=stall or STALL_SECONDS, tracking=self.tracking
            )
        pool = BlockingConnectionPool.from_url(self._dsn, **self._options)
        return Direct(Redis.from_pool(pool))

    def track(self, listener: Invalidations) -> bool:
        """Have ``listener`` told of changes to the keys of ``cached`` reads (see
        ``tracking``); False, and nothing done, where no connection can track:
        without auto-pipelining each call takes a pooled connection."""
        if not self._autopipeline:
            return False
        self.tracking.add(listener)
        return True

    def untrack(self, listener: Invalidations) -> None:
        self.tracking.remove(listener)

    async def run(self, operation: Operation, *, cached: bool = False) -> Any:
        """``cached``: a read whose answer a cache keeps, for Redis to track."""
        try:
            return await self._transports.current().run(operation, cached=cached)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    async def run_all(self, operations: list[Operation], *, cached: bool = False) -> list[Any]:
        if len(operations) == 1:
            return [await self.run(operations[0], cached=cached)]
        try:
            return await self._transports.current().run_all(operations, cached=cached)
        except DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: BaseException) -> BackendError | BadDataError:
        """What a driver's error becomes; a subclass may act on it first (``SentinelLink``)."""
        return failed(self.url, exc)

    # A server that lost its scripts answers NOSCRIPT: load the script, then ask again.

    async def run_script(
        self, script: Lua, keys: list[bytes], args: list[Any], *, cached: bool = False
    ) -> Any:
        operation = _evalsha(script, keys, args)
        try:
            return await self.run(operation, cached=cached)
        except BackendError as exc:
            if not isinstance(exc.__cause__, NoScriptError):
                raise
            await self.run(_script_load(script))
            return await self.run(operation, cached=cached)

    async def run_scripts(self, script: Lua, calls: Calls) -> list[Any]:
        operations = [_evalsha(script, keys, args) for keys, args in calls]
        try:
            return await self.run_all(operations)
        except BackendError as exc:
            if not isinstance(exc.__cause__, NoScriptError):
                raise
            await self.run(_script_load(script))
            return await self.run_all(operations)

    async def close(self) -> None:
        await self._transports.close()
