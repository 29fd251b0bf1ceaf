"""``redis://``, ``rediss://``, ``unix://``: redis-py's asyncio client (with hiredis).

The client is bound to the event loop that first used it; a store used from a
new loop (``asyncio.run`` called again) opens a new client there, so nothing
outlives the loop it was made on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

from redis.asyncio import Redis
from redis.asyncio.connection import parse_url
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from dbdaora.backends import mask_url
from dbdaora.backends.base import LEASE_SECONDS, NOT_FOUND, HashValue, Members, Pairs
from dbdaora.exceptions import BackendError, ConfigurationError

P = ParamSpec("P")
T = TypeVar("T")

# ARGV: token, ttl (0 = none), command, then its field/value or score/member pairs.
# Pairs go in slices: Lua's unpack() has a stack limit far below a large set.
_FILL = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
for i = 4, #ARGV, 1000 do
  redis.call(ARGV[3], KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""

# ARGV: token, ttl (0 = none)
_FILL_MISSING = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], '1')
else
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
end
return 1
"""

# ARGV: ttl (0 = none), max_size (0 = none), token, created (1/0), then score/member pairs
_ADD_MEMBERS = """
local held = redis.call('GET', KEYS[2]) == ARGV[3]
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 and not (held and ARGV[4] == '1') then return 0 end
for i = 5, #ARGV, 1000 do
  redis.call('ZADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
if ARGV[2] ~= '0' then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[2]) - 1) end
if ARGV[1] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return 1
"""


Method = Callable[Concatenate["RedisStore", P], Coroutine[Any, Any, T]]


def _wrapped(command: str) -> Callable[[Method[P, T]], Method[P, T]]:
    """Turn driver and socket errors into one ``BackendError`` naming the masked URL."""

    def decorate(method: Method[P, T]) -> Method[P, T]:
        @functools.wraps(method)
        async def call(self: RedisStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return await method(self, *args, **kwargs)
            except (RedisError, OSError, TimeoutError) as exc:
                raise BackendError(f"Redis {command} failed: {exc}", url=self.url) from exc

        return call

    return decorate


async def _closing(client: Redis) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await client.aclose()


def _close_with_loop(client: Redis) -> AsyncGenerator[None, None]:
    """Close ``client`` when its event loop shuts down (``asyncio.run`` ending).

    An async generator first iterated in a loop is closed by that loop's
    ``shutdown_asyncgens()``; stepping this one to its ``yield`` registers it.
    """
    closer = _closing(client)
    with contextlib.suppress(StopIteration):
        closer.asend(None).send(None)
    return closer


def _flat_hash(value: HashValue) -> list[Any]:
    return [item for pair in value.items() for item in pair]


def _flat_members(members: Members) -> list[Any]:
    return [item for member, score in members for item in (score, member)]


class RedisStore:
    """The Redis side on a real server."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = mask_url(url)
        self._dsn = url
        self._options = {"protocol": 2, "decode_responses": False, **options}
        self._client: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._closer: AsyncGenerator[None, None] | None = None
        try:
            parse_url(url)
        except ValueError as exc:
            raise ConfigurationError(f"bad Redis URL {self.url!r}: {exc}") from exc

    def _redis(self) -> Redis:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = Redis.from_url(self._dsn, **self._options)
            self._loop = loop
            self._closer = _close_with_loop(self._client)
            self._scripts = {
                name: self._client.register_script(source)
                for name, source in (
                    ("fill", _FILL),
                    ("fill_missing", _FILL_MISSING),
                    ("add_members", _ADD_MEMBERS),
                )
            }
        return self._client

    async def close(self) -> None:
        closer, self._closer, self._client = self._closer, None, None
        if closer is not None and self._loop is asyncio.get_running_loop():
            await closer.aclose()

    @_wrapped("HGETALL")
    async def hgetall(self, key: bytes) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], await self._redis().hgetall(key))

    @_wrapped("HMGET")
    async def hmget(self, key: bytes, fields: Sequence[bytes]) -> list[bytes | None]:
        return cast(list[bytes | None], await self._redis().hmget(key, fields))

    @_wrapped("HGETALL")
    async def hgetall_many(self, keys: Sequence[bytes]) -> list[dict[bytes, bytes]]:
        pipe = self._redis().pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        result: list[dict[bytes, bytes]] = await pipe.execute()
        return result

    @_wrapped("HMGET")
    async def hmget_many(
        self, keys: Sequence[bytes], fields: Sequence[bytes]
    ) -> list[list[bytes | None]]:
        pipe = self._redis().pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, fields)
        result: list[list[bytes | None]] = await pipe.execute()
        return result

    @_wrapped("EXISTS")
    async def exists(self, key: bytes) -> bool:
        return bool(await self._redis().exists(key))

    @_wrapped("SET NX GET")
    async def lease(self, markers: Sequence[bytes], token: bytes) -> list[bytes | None]:
        if len(markers) == 1:
            before = await self._redis().set(markers[0], token, nx=True, get=True, ex=LEASE_SECONDS)
            return [cast(bytes | None, before)]
        pipe = self._redis().pipeline(transaction=False)
        for marker in markers:
            pipe.set(marker, token, nx=True, get=True, ex=LEASE_SECONDS)
        result: list[bytes | None] = await pipe.execute()
        return result

    async def _run_script(self, name: str, calls: Sequence[tuple[list[bytes], list[Any]]]) -> None:
        client = self._redis()
        script = self._scripts[name]
        if len(calls) == 1:
            keys, args = calls[0]
            await script(keys=keys, args=args)
            return
        pipe = client.pipeline(transaction=False)
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        await pipe.execute()

    @_wrapped("fill (EVALSHA)")
    async def fill_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], token: bytes, ttl: int | None
    ) -> None:
        await self._run_script(
            "fill",
            [
                ([key, marker], [token, ttl or 0, "HSET", *_flat_hash(value)])
                for key, marker, value in items
            ],
        )

    @_wrapped("fill (EVALSHA)")
    async def fill_sorted_set(
        self, key: bytes, marker: bytes, members: Members, token: bytes, ttl: int | None
    ) -> None:
        await self._run_script(
            "fill", [([key, marker], [token, ttl or 0, "ZADD", *_flat_members(members)])]
        )

    @_wrapped("fill not-found (EVALSHA)")
    async def fill_missing(self, markers: Sequence[bytes], token: bytes, ttl: int | None) -> None:
        await self._run_script(
            "fill_missing", [([marker], [token, ttl or 0]) for marker in markers]
        )

    @_wrapped("MULTI DEL HSET EXPIRE")
    async def put_hashes(
        self, items: Sequence[tuple[bytes, bytes, HashValue]], ttl: int | None
    ) -> None:
        pipe = self._redis().pipeline(transaction=True)
        for key, marker, value in items:
            pipe.delete(key)
            pipe.hset(key, mapping=cast(dict[Any, Any], value))
            if ttl:
                pipe.expire(key, ttl)
            pipe.delete(marker)
        await pipe.execute()

    @_wrapped("MULTI DEL ZADD EXPIRE")
    async def put_sorted_set(
        self, key: bytes, marker: bytes, members: Members, ttl: int | None
    ) -> None:
        pipe = self._redis().pipeline(transaction=True)
        pipe.delete(key)
        if members:
            pipe.zadd(key, {member: score for member, score in members})
            if ttl:
                pipe.expire(key, ttl)
        pipe.delete(marker)
        await pipe.execute()

    @_wrapped("SET")
    async def claim(self, marker: bytes, token: bytes) -> None:
        await self._redis().set(marker, token, ex=LEASE_SECONDS)

    @_wrapped("add members (EVALSHA)")
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
        args = [ttl or 0, max_size or 0, token, int(created), *_flat_members(members)]
        await self._run_script("add_members", [([key, marker], args)])

    @_wrapped("MULTI ZREM DEL")
    async def remove_members(self, key: bytes, marker: bytes, members: Sequence[str]) -> None:
        pipe = self._redis().pipeline(transaction=True)
        pipe.zrem(key, *members)
        pipe.delete(marker)
        await pipe.execute()

    @_wrapped("MULTI DEL SET")
    async def delete(self, key: bytes, marker: bytes, ttl: int | None) -> None:
        pipe = self._redis().pipeline(transaction=True)
        pipe.delete(key)
        pipe.set(marker, NOT_FOUND, ex=ttl)
        await pipe.execute()

    @_wrapped("DEL")
    async def evict(self, keys: Sequence[bytes]) -> None:
        await self._redis().delete(*keys)

    @_wrapped("ZRANGE")
    async def zrange(self, key: bytes, start: int, stop: int, *, reverse: bool) -> Pairs:
        return cast(
            Pairs, await self._redis().zrange(key, start, stop, desc=reverse, withscores=True)
        )

    @_wrapped("ZRANGE BYSCORE")
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
        result = await self._redis().zrange(
            key,
            start,
            end,
            desc=reverse,
            byscore=True,
            withscores=True,
            offset=offset if limited else None,
            num=(-1 if count is None else count) if limited else None,
        )
        return cast(Pairs, result)

    @_wrapped("ZCARD")
    async def zcard(self, key: bytes) -> int:
        return int(await self._redis().zcard(key))
