"""The commands behind the stores' operations, as ``Operation`` builders.

Each function says which command one store operation sends and returns it as an
``Operation``: a function of a command target (redis-py's client or pipeline, or
the multiplexer's encoder), for the store's link to run. What a command means
to dbdaora lives here and in ``scripts``; how it reaches a server lives in ``wire``.
``zrem`` serves the cluster alone, whose link runs them on
redis-py's client; the rest also run on the multiplexer's encoder.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbdaora.backends.redis.wire.transport import Operation
from dbdaora.lease import LEASE_SECONDS


def ping() -> Operation:
    return lambda target: target.ping()


def hgetall(key: bytes) -> Operation:
    return lambda target: target.hgetall(key)


def hmget(key: bytes, fields: Sequence[bytes]) -> Operation:
    return lambda target: target.hmget(key, fields)


def exists(key: bytes) -> Operation:
    return lambda target: target.exists(key)


def hlen(key: bytes) -> Operation:
    return lambda target: target.hlen(key)


def get(key: bytes) -> Operation:
    return lambda target: target.get(key)


def delete(*keys: bytes) -> Operation:
    return lambda target: target.delete(*keys)


def lease(marker: bytes, token: bytes) -> Operation:
    """Take the read lease where the marker is absent; the reply is its value before."""
    return lambda target: target.set(marker, token, nx=True, get=True, ex=LEASE_SECONDS)


def claim(marker: bytes, token: bytes) -> Operation:
    """A writer's claim: the marker holds its token, whatever it held."""
    return lambda target: target.set(marker, token, ex=LEASE_SECONDS)


def zrem(key: bytes, members: Sequence[str]) -> Operation:
    return lambda target: target.zrem(key, *members)


def zrange(key: bytes, start: int, stop: int, *, reverse: bool) -> Operation:
    return lambda target: target.zrange(key, start, stop, desc=reverse, withscores=True)


def zrange_by_score(
    key: bytes, low: float, high: float, *, reverse: bool, offset: int, count: int | None
) -> Operation:
    start, end = (high, low) if reverse else (low, high)
    limited = bool(offset) or count is not None
    return lambda target: target.zrange(
        key,
        start,
        end,
        desc=reverse,
        byscore=True,
        withscores=True,
        offset=offset if limited else None,
        num=(-1 if count is None else count) if limited else None,
    )


def zcard(key: bytes) -> Operation:
    return lambda target: target.zcard(key)


def geosearch(
    key: bytes, longitude: float, latitude: float, radius: float, unit: str, count: int | None
) -> Operation:
    return lambda target: target.geosearch(
        key,
        longitude=longitude,
        latitude=latitude,
        radius=radius,
        unit=unit,
        sort="ASC",
        count=count,
        withdist=True,
        withcoord=True,
    )
