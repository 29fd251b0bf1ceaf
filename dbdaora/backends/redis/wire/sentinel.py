"""The link to the master a Redis Sentinel deployment names (``redis+sentinel://``).

``redis+sentinel://[[user]:password@]host1:port1,host2:port2/<master-name>/<db>``
lists the sentinels (any that answers will do); the password, TLS
(``rediss+sentinel://``, to the master) and query options are the single-node
URL's and reach the data nodes. ``sentinel_password`` and ``sentinel_username``
in the query reach the sentinels.

The commands go as on one node (``node``): one multiplexed connection, or
redis-py's pool without auto-pipelining. What changes is where a connection
goes: each one is a redis-py ``SentinelManagedConnection``, which asks the
sentinels for the master's address before it connects, so a connection that
breaks is replaced by one to whoever is master then. On top of redis-py, a
connection checks with ROLE that the server it reached is a master (the
sentinels may not yet know of a failover), and the first to reach a new master
fails once (``MasterConnection``); a READONLY answer (a demoted old master)
drops the connection; and ``follow_master`` — the store's ping, the breaker's
probe, and every ``FOLLOW_INTERVAL`` — asks the sentinels again and leaves a
server they no longer name. Without auto-pipelining, redis-py's Sentinel pool
holds at most 50 connections and, unlike the single-node one, refuses a 51st
caller (``BackendError``) rather than make it wait.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool, SentinelManagedConnection
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from dbdaora.backends.redis.wire.link import failed
from dbdaora.backends.redis.wire.multiplex import Multiplexer
from dbdaora.backends.redis.wire.node import DRIVER_ERRORS, STALL_SECONDS, NodeLink, with_defaults
from dbdaora.backends.redis.wire.tracking import Tracking
from dbdaora.backends.redis.wire.transport import Direct, Operation
from dbdaora.exceptions import BackendError, BadDataError, ConfigurationError

SENTINEL_PORT = 26379
# Seconds, for the sentinels' connections; the URL's socket_timeout and
# socket_connect_timeout win. Bounded so that a hung sentinel is passed over for
# the next one within a probe, not waited for.
SENTINEL_TIMEOUT = 1.0
# Seconds between two questions to the sentinels about the master, beside those
# on each new connection and each probe: how long a session may stay on a master
# that Sentinel replaced while it was still up.
FOLLOW_INTERVAL = 1.0
# Query options that are the sentinels', not the data nodes'.
SENTINEL_OPTIONS = {"sentinel_password": "password", "sentinel_username": "username"}


class MasterPool(SentinelConnectionPool):
    """redis-py's pool of connections to a Sentinel master, and the master its last
    connection reached."""

    served_by: tuple[str, int] | None = None


class MasterConnection(SentinelManagedConnection):
    """A connection to the address the sentinels give, refused unless it is a master.

    The first connection to a master other than the last one's fails too, once,
    with a ``RedisError`` that redis-py does not retry: its callers answer from
    the fallback, and the session checks for a restart before its next call (the
    promoted replica's copies may be older than acknowledged writes), as after
    any failure. Without it, a connection that broke while idle would move to
    the new master with no call seeing it.
    """

    async def on_connect_check_health(self, check_health: bool = True) -> None:
        await super().on_connect_check_health(check_health=check_health)
        await self.send_command("ROLE")
        role = await self.read_response()
        if not role or role[0] != b"master":
            raise RedisConnectionError(
                f"{self.host}:{self.port} is not the master (a replica, or a demoted master)"
            )
        pool = self.connection_pool
        address = (self.host, self.port)
        previous, pool.served_by = pool.served_by, address
        if previous is not None and previous != address:
            raise RedisError(f"the master moved from {previous} to {address}")


class MasterSSLConnection(MasterConnection, SSLConnection):
    """``MasterConnection`` over TLS (``rediss+sentinel://``)."""


def parse_sentinel_url(
    url: str,
) -> tuple[list[tuple[str, int]], str, dict[str, Any], dict[str, Any]]:
    """The sentinels' (host, port), the master's name, the data nodes' options and
    the sentinels' options of a ``redis+sentinel://`` URL.

    Raises:
        ValueError: no sentinel, a sentinel not ``host[:port]``, no master name, or
            a database that is not a number.
    """
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if not hosts:
        raise ValueError("no sentinel host:port listed")
    sentinels = []
    for address in hosts.split(","):
        host, colon, port = address.rpartition(":")
        if not colon:
            host, port = address, str(SENTINEL_PORT)
        if not host or not port.isdigit():
            raise ValueError(f"sentinel {address!r} is not host:port")
        sentinels.append((host.strip("[]"), int(port)))
    name, _, db = parts.path.strip("/").partition("/")
    if not name:
        raise ValueError("no master name: the path is /<master-name>/<db>")
    if db and not db.isdigit():
        raise ValueError(f"database {db!r} is not a number")
    query = parse_qsl(parts.query, keep_blank_values=True)
    sentinel_options: dict[str, Any] = {
        SENTINEL_OPTIONS[key]: value for key, value in query if key in SENTINEL_OPTIONS
    }
    rest = urlencode([(key, value) for key, value in query if key not in SENTINEL_OPTIONS])
    scheme = "rediss" if parts.scheme.startswith("rediss") else "redis"
    first = f"{userinfo}{at}{sentinels[0][0]}:{sentinels[0][1]}"
    node_url = urlunsplit((scheme, first, f"/{db or 0}", rest, ""))
    options: dict[str, Any] = dict(parse_url(node_url))
    options.pop("host", None)
    options.pop("port", None)
    ssl = options.pop("connection_class", None) is SSLConnection
    options["connection_class"] = MasterSSLConnection if ssl else MasterConnection
    for key, value in options.items():
        if key.startswith("socket_") and "timeout" in key:
            sentinel_options.setdefault(key, value)
    sentinel_options.setdefault("socket_timeout", SENTINEL_TIMEOUT)
    sentinel_options.setdefault("socket_connect_timeout", SENTINEL_TIMEOUT)
    return sentinels, unquote(name), options, sentinel_options


class MasterTransport:
    """A transport to the current master: the sentinels' client, the connection
    pool that asks them, the transport over that pool, and the task that asks the
    sentinels every ``FOLLOW_INTERVAL``. Made in the running event loop.
    """

    def __init__(
        self, sentinel: Sentinel, pool: MasterPool, autopipeline: bool, tracking: Tracking
    ):
        self.sentinel = sentinel
        self.pool = pool
        self.inner: Multiplexer | Direct
        if autopipeline:
            stall = pool.connection_kwargs.get("socket_timeout") or STALL_SECONDS
            self.inner = Multiplexer(pool.make_connection, stall_timeout=stall, tracking=tracking)
        else:
            self.inner = Direct(Redis.from_pool(pool))
        self._follower = asyncio.get_running_loop().create_task(self._following())

    async def _following(self) -> None:
        # A master that Sentinel replaced while it was up (SENTINEL FAILOVER, a
        # partition) keeps its clients until Sentinel turns it into a replica, up to
        # its 10 s INFO period later: its data meanwhile misses what others write.
        while True:
            await asyncio.sleep(FOLLOW_INTERVAL)
            with contextlib.suppress(*DRIVER_ERRORS):
                await self.follow_master()

    def run(self, operation: Operation, *, cached: bool = False) -> Awaitable[Any]:
        return self.inner.run(operation, cached=cached)

    def run_all(self, operations: list[Operation], *, cached: bool = False) -> Awaitable[list[Any]]:
        return self.inner.run_all(operations, cached=cached)

    def leave(self, reason: str) -> None:
        """Drop the multiplexed connection: the next command asks the sentinels.

        A pooled connection (no auto-pipelining) is left to redis-py, which drops
        it on READONLY and when the master's address changes.
        """
        if isinstance(self.inner, Multiplexer):
            self.inner.reconnect(RedisConnectionError(reason))

    async def follow_master(self) -> None:
        """Ask the sentinels for the master; leave the connection if it moved."""
        before = self.pool.master_address
        # redis-py leaves get_master_address unannotated
        now = await self.pool.get_master_address()  # type: ignore[no-untyped-call]
        if before is not None and now != before:
            self.leave(f"the master moved from {before} to {now}")

    async def close(self) -> None:
        self._follower.cancel()
        try:
            await self._follower
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        try:
            await self.inner.close()
        finally:
            await self.sentinel.aclose()


class SentinelLink(NodeLink):
    """The connection side of ``SentinelStore``: ``NodeLink``'s, to the current master.

    Args:
        url: ``redis+sentinel://`` with the sentinels and the master's name.
        autopipeline: multiplex every command on one connection, rather than one
            pooled connection per call.
        options: redis-py options for the data nodes; they win over the URL's.

    Raises:
        ConfigurationError: the URL does not parse, or names no sentinel or no master.
    """

    _sentinels: list[tuple[str, int]]
    _sentinel_options: dict[str, Any]
    master_name: str

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        try:
            parsed = parse_sentinel_url(self._dsn)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis Sentinel URL {self.url!r}: {exc}") from exc
        self._sentinels, self.master_name, url_options, sentinel_options = parsed
        # redis-py's default, three retries with backoff, would hold a probe on a
        # dead sentinel for seconds before it asks the next one.
        self._sentinel_options = {"retry": Retry(NoBackoff(), 1), **sentinel_options}
        return with_defaults({**url_options, **options})

    def _open(self) -> MasterTransport:
        # redis-py leaves Sentinel's and its pool's __init__ unannotated
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            self._sentinels, sentinel_kwargs=self._sentinel_options
        )
        pool = MasterPool(  # type: ignore[no-untyped-call]
            self.master_name, sentinel, **self._options
        )
        return MasterTransport(sentinel, pool, self._autopipeline, self.tracking)

    def _failed(self, exc: BaseException) -> BackendError | BadDataError:
        if isinstance(exc, ResponseError) and "READONLY" in str(exc):
            self._transport().leave("the master was demoted to a replica")
        return failed(self.url, exc)

    def _transport(self) -> MasterTransport:
        transport = self._transports.current()
        assert isinstance(transport, MasterTransport)
        return transport

    async def follow_master(self) -> None:
        """Ask the sentinels which server is the master, and go there if it moved.

        Raises:
            BackendError: no sentinel answers, or none knows a master by that name
                that is up.
        """
        try:
            await self._transport().follow_master()
        except DRIVER_ERRORS as exc:
            raise failed(self.url, exc) from exc
