"""``redis://``, ``rediss://``, ``unix://``: redis-py's asyncio client (with hiredis).

Every operation is one round trip. Writes that touch an entity's key and its
not-found marker together run as Lua scripts, so each is atomic (as a MULTI
block would be) and still a single command that auto-pipelining can batch with
others (see ``pipelining``).

The client is bound to the event loop that first used it; a store used from a
new loop (``asyncio.run`` called again) opens a new client there and the old one
is closed when its loop shuts down, so nothing outlives the loop it was made on.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, ClassVar, TypeVar

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from dbdaora.backends.loops import close_with_loop
from dbdaora.backends.redis.protocol import HashValue, Members, Pairs
from dbdaora.backends.redis.wire.multiplex import Multiplexer
from dbdaora.backends.redis.wire.pipelining import Direct, Operation, Transport, alone
from dbdaora.backends.urls import mask_url
from dbdaora.exceptions import BackendError, ConfigurationError
from dbdaora.lease import LEASE_SECONDS

T = TypeVar("T")

# Seconds a connection owing replies may hear nothing before it is replaced;
# a URL's or the options' socket_timeout wins.
STALL_SECONDS = 5.0


class Script:
    """A Lua script run by its SHA1, loaded on the first NOSCRIPT answer."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


# Pairs go in slices: Lua's unpack() has a stack limit far below a large set.
# ARGV: token, ttl (0 = none), command, then its field/value or score/member pairs.
FILL = Script("""
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
for i = 4, #ARGV, 1000 do
  redis.call(ARGV[3], KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
""")

# ARGV: token, lease seconds. The hash (an even count of items), or on a miss the
# marker's value before as a list of one, or an empty list when the lease was taken.
HGETALL_OR_LEASE = Script("""
local found = redis.call('HGETALL', KEYS[1])
if #found > 0 then return found end
local before = redis.call('SET', KEYS[2], ARGV[1], 'NX', 'GET', 'EX', ARGV[2])
if before then return {before} end
return {}
""")

# ARGV: token, ttl (0 = none)
FILL_MISSING = Script("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], '1')
else
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
end
return 1
""")

# ARGV: ttl (0 = none), then field/value pairs
PUT_HASH = Script("""
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1
""")

# ARGV: ttl (0 = none), then score/member pairs (none: the set is gone)
PUT_SET = Script("""
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if #ARGV > 1 and ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('DEL', KEYS[2])
return 1
""")

# ARGV: ttl (0 = none), max_size (0 = none), token, created (1/0), then score/member pairs
ADD_MEMBERS = Script("""
local held = redis.call('GET', KEYS[2]) == ARGV[3]
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 and not (held and ARGV[4] == '1') then return 0 end
for i = 5, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1) end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
""")

# ARGV: members
REMOVE_MEMBERS = Script("""
for i = 1, #ARGV, 1000 do
  redis.call('ZREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('DEL', KEYS[2])
return 1
""")

# ARGV: ttl (0 = none)
DELETE = Script("""
redis.call('DEL', KEYS[1])
if ARGV[1] == '0' then
  redis.call('SET', KEYS[2], '1')
else
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[1])
end
return 1
""")


def flat_hash(value: HashValue) -> list[Any]:
    return [item for pair in value.items() for item in pair]


def flat_members(members: Members) -> list[Any]:
    return [item for member, score in members for item in (score, member)]


class RedisStore:
    """The Redis side on a real server.

    Args:
        url: ``redis://[:password@]host:port/db``, ``rediss://`` for TLS, ``unix://``.
        autopipeline: batch the commands of one event-loop iteration into one
            round trip (the default).
    """

    # What the driver raises when the server cannot be reached or answers an error.
    DRIVER_ERRORS: ClassVar[tuple[type[BaseException], ...]] = (RedisError, OSError)

    def __init__(self, url: str, *, autopipeline: bool = True, **options: Any) -> None:
        self.url = mask_url(url)
        self.autopipeline = autopipeline
        self._dsn = url
        self._options = self._client_options(options)
        self._current: Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    def _client_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """The client's options: the URL checked, dbdaora's defaults, then ``options``.

        Raises:
            ConfigurationError: the URL does not parse.
        """
        try:
            parse_url(self._dsn)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {self.url!r}: {exc}") from exc
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

    def _open(self) -> Transport:
        """A new way to the server, for the running event loop."""
        if self.autopipeline:
            pool = ConnectionPool.from_url(self._dsn, **self._options)
            stall = {**parse_url(self._dsn), **self._options}.get("socket_timeout")
            return Multiplexer(pool.make_connection, stall_timeout=stall or STALL_SECONDS)
        pool = BlockingConnectionPool.from_url(self._dsn, **self._options)
        return Direct(Redis.from_pool(pool))

    def _transport(self) -> Transport:
        loop = asyncio.get_running_loop()
        if self._current is None or self._loop is not loop:
            self._current = self._open()
            self._loop = loop
            self._closer = close_with_loop(self._current.close)
        return self._current

    async def _run(self, operation: Operation) -> Any:
        """One operation's result; driver and socket errors become ``BackendError``."""
        try:
            return await self._transport().run(operation)
        except self.DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    async def _run_all(self, operations: list[Operation]) -> list[Any]:
        """Several operations' results, in one round trip."""
        if len(operations) == 1:
            return [await self._run(operations[0])]
        try:
            return await self._transport().run_all(operations)
        except self.DRIVER_ERRORS as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: BaseException) -> BackendError:
        return BackendError(f"Redis failed: {exc}", url=self.url)

    def _script(self, script: Script, keys: list[bytes], args: list[Any]) -> Operation:
        return lambda target: target.evalsha(script.sha, len(keys), *keys, *args)

    async def _run_scripts(
        self, script: Script, calls: Sequence[tuple[list[bytes], list[Any]]]
    ) -> list[Any]:
        operations = [self._script(script, keys, args) for keys, args in calls]
        return await self._loading(script, lambda: self._run_all(operations))

    async def _loading(self, script: Script, send: Callable[[], Awaitable[T]]) -> T:
        """``send()``, once more after loading ``script`` if the server did not have it."""
        try:
            return await send()
        except BackendError as exc:
            if not isinstance(exc.__cause__, NoScriptError):
                raise
            await self._run(lambda target: target.script_load(script.source))
            return await send()

    async def close(self) -> None:
        closer, self._closer, self._current = self._closer, None, None
        if closer is not None and self._loop is asyncio.get_running_loop():
            await closer.aclose()

    # The two reads of a get return _run's coroutine: no frame of their own.
    def hgetall(self, key: bytes) -> Coroutine[Any, Any, dict[bytes, bytes]]:
        return self._run(lambda target: target.hgetall(key))

    def hmget(self, key: bytes, fields: Sequence[bytes]) -> Coroutine[Any, Any, list[bytes | None]]:
        return self._run(lambda target: target.hmget(key, fields))

    async def hgetall_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]:
        return await self._run_all([functools.partial(_hgetall, key=key) for key in keys])

    async def hmget_many(
        self, keys: Sequence[bytes], fields: Sequence[bytes]
    ) -> list[list[bytes | None]]:
        return await self._run_all(
            [functools.partial(_hmget, key=key, fields=fields) for key in keys]
        )

    def leases_on_read(self) -> bool:
        # Batched with other callers, a get shares its round trip, and the plain
        # HGETALL costs Redis a sixth of the script (0.9 µs against 5.8 µs a call
        # in INFO commandstats): under load, Redis time is what is short. A caller
        # alone pays each round trip itself: one less on a miss is worth it.
        return not self.autopipeline or alone(asyncio.get_running_loop())

    async def hgetall_or_lease(
        self, key: bytes, marker: bytes, token: bytes
    ) -> tuple[dict[bytes, bytes], bytes | None]:
        operation = self._script(HGETALL_OR_LEASE, [key, marker], [token, LEASE_SECONDS])
        reply: list[bytes] = await self._loading(HGETALL_OR_LEASE, lambda: self._run(operation))
        if len(reply) == 1:
            return {}, reply[0]
        items = iter(reply)
        return dict(zip(items, items, strict=True)), None

    async def exists(self, key: bytes) -> bool:
        return bool(await self._run(lambda target: target.exists(key)))

    async def lease(self, markers: Sequence[bytes], token: bytes) -> list[bytes | None]:
        return await self._run_all(
            [functools.partial(_lease, marker=marker, token=token) for marker in markers]
        )

    async def claim(self, marker: bytes, token: bytes) -> None:
        await self._run(lambda target: target.set(marker, token, ex=LEASE_SECONDS))

    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._run_scripts(
            FILL,
            [
                ([key, marker], [token, ttl or 0, "HSET", *flat_hash(value)])
                for key, marker, value in items
            ],
        )

    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        await self._run_scripts(
            FILL, [([key, marker], [token, ttl or 0, "ZADD", *flat_members(members)])]
        )

    async def fill_missing(self, markers: Sequence[bytes], token: bytes, ttl: int | None) -> None:
        await self._run_scripts(FILL_MISSING, [([marker], [token, ttl or 0]) for marker in markers])

    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], ttl: int | None
    ) -> None:
        await self._run_scripts(
            PUT_HASH,
            [([key, marker], [ttl or 0, *flat_hash(value)]) for key, marker, value in items],
        )

    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, ttl: int | None
    ) -> None:
        await self._run_scripts(PUT_SET, [([key, marker], [ttl or 0, *flat_members(members)])])

    async def add_members(
        self,
        key: bytes,
        marker: bytes,
        members: Members,
        ttl: int | None,
        max_size: int | None,
        *,
        token: bytes,
        created: bool,
    ) -> None:
        args = [ttl or 0, max_size or 0, token, int(created), *flat_members(members)]
        await self._run_scripts(ADD_MEMBERS, [([key, marker], args)])

    async def remove_members(self, key: bytes, marker: bytes, members: Sequence[str]) -> None:
        await self._run_scripts(REMOVE_MEMBERS, [([key, marker], list(members))])

    async def delete(self, key: bytes, marker: bytes, ttl: int | None) -> None:
        await self._run_scripts(DELETE, [([key, marker], [ttl or 0])])

    async def evict(self, keys: Sequence[bytes]) -> None:
        await self._run(lambda target: target.delete(*keys))

    async def zrange(self, key: bytes, start: int, stop: int, *, reverse: bool) -> Pairs:
        result: Pairs = await self._run(
            lambda target: target.zrange(key, start, stop, desc=reverse, withscores=True)
        )
        return result

    async def zrange_by_score(
        self,
        key: bytes,
        low: float,
        high: float,
        *,
        reverse: bool,
        offset: int,
        count: int | None,
    ) -> Pairs:
        start, end = (high, low) if reverse else (low, high)
        limited = bool(offset) or count is not None
        result: Pairs = await self._run(
            lambda target: target.zrange(
                key,
                start,
                end,
                desc=reverse,
                byscore=True,
                withscores=True,
                offset=offset if limited else None,
                num=(-1 if count is None else count) if limited else None,
            )
        )
        return result

    async def zcard(self, key: bytes) -> int:
        return int(await self._run(lambda target: target.zcard(key)))


def _hgetall(target: Any, key: bytes) -> Any:
    return target.hgetall(key)


def _hmget(target: Any, key: bytes, fields: Sequence[bytes]) -> Any:
    return target.hmget(key, fields)


def _lease(target: Any, marker: bytes, token: bytes) -> Any:
    return target.set(marker, token, nx=True, get=True, ex=LEASE_SECONDS)
