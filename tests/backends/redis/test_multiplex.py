"""The single-node store's one multiplexed connection, on a real redis-server.

Replies are shaped as redis-py's client shapes them; a connection that dies or
stalls fails only the callers it owed, and the next command opens a new one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio

from dbdaora import BackendError
from dbdaora.backends.redis.single import RedisStore
from tests.support.servers import RedisServer, redis_server

# (name, args, kwargs) of every command method the store sends through the connection.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("hgetall", (b"h",), {}),
    ("hgetall", (b"absent",), {}),
    ("hmget", (b"h", [b"a", b"missing", b"b"]), {}),
    ("exists", (b"h", b"absent"), {}),
    ("set", (b"s2", "v", 60), {}),
    ("set", (b"s", "other"), {"nx": True}),
    ("set", (b"s", "other"), {"ex": 60, "nx": True, "get": True}),
    ("set", (b"new", "v"), {"ex": 60, "nx": True, "get": True}),
    ("zrange", (b"z", 0, -1), {"withscores": True}),
    ("zrange", (b"z", 0, 1), {"desc": True, "withscores": True}),
    ("zrange", (b"z", 1.5, 3.0), {"byscore": True, "withscores": True}),
    ("zrange", (b"z", 3.0, 1.5), {"byscore": True, "desc": True, "offset": 1, "num": 1}),
    ("zrange", (b"z", 0, -1), {}),
    ("zcard", (b"z",), {}),
    ("delete", (b"s2", b"absent"), {}),
    ("script_load", ("return 1",), {}),
    ("evalsha", ("e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0), {}),
]


def _seed(client: redis.Redis) -> None:
    client.flushall()
    client.hset("h", mapping={"a": "1", "b": "é"})
    client.set("s", "text")
    client.zadd("z", {"m1": 1.0, "m2": 2.5, "m3": 3.0, "m4": -0.5})


@pytest.mark.parametrize(("name", "args", "kwargs"), CALLS)
async def test_replies_have_redis_pys_shapes(
    redis_proc: RedisServer,
    raw_redis: redis.Redis,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Each command answers as redis-py's client answers it, on the same data."""
    plain = redis.asyncio.Redis.from_url(redis_proc.url)
    _seed(raw_redis)
    expected = await getattr(plain, name)(*args, **kwargs)
    await plain.aclose()
    store = RedisStore(redis_proc.url)
    _seed(raw_redis)
    got = await store._link.run(lambda target: getattr(target, name)(*args, **kwargs))
    await store.close()
    assert got == expected
    assert type(got) is type(expected)


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone: it gets paused."""
    with redis_server() as server:
        yield server


async def test_a_stalled_connection_fails_its_callers_and_is_replaced(
    own_redis: RedisServer,
) -> None:
    """Owed replies that do not come within socket_timeout fail; the next call reconnects."""
    store = RedisStore(own_redis.url, socket_timeout=0.3)
    client = own_redis.client()
    client.hset("person:a", "name", "A")
    assert (await store.hgetall(b"person:a"))[b"name"] == b"A"
    own_redis.pause()
    started = time.monotonic()
    try:
        with pytest.raises(BackendError, match="sent nothing"):
            await store.hgetall(b"person:a")
    finally:
        own_redis.resume()
    assert time.monotonic() - started < 1.5  # at most two watchdog periods, plus slack
    assert (await store.hgetall(b"person:a"))[b"name"] == b"A"
    await store.close()
    client.close()


async def test_a_killed_connection_is_reopened(
    redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """The server closing the connection costs no later call."""
    raw_redis.hset("person:a", "name", "A")
    store = RedisStore(redis_proc.url)
    assert await store.exists(b"person:a")
    killed = raw_redis.client_kill_filter(_type="normal", skipme=True)
    assert killed == 1
    await asyncio.sleep(0.05)  # the loop reads the close
    assert (await store.hgetall(b"person:a"))[b"name"] == b"A"
    await store.close()


async def test_closing_fails_the_callers_still_waiting(own_redis: RedisServer) -> None:
    """A caller whose reply has not come when the store closes gets BackendError."""
    store = RedisStore(own_redis.url)
    await store.exists(b"warm")
    own_redis.pause()
    try:
        waiting = asyncio.ensure_future(store.hgetall(b"person:a"))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await store.close()
        with pytest.raises(BackendError, match="closed"):
            await waiting
    finally:
        own_redis.resume()


async def test_an_unreachable_server_fails_every_queued_caller() -> None:
    """Callers queued while the connection opens share its failure."""
    store = RedisStore("redis://127.0.0.1:1/0")
    outcomes = await asyncio.gather(
        *(store.hgetall(f"k{i}".encode()) for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(outcome, BackendError) for outcome in outcomes)
    await store.close()
