"""The keyspace under ``InProcessRedis``: Redis's values, expiry and commands, on dicts.

Values are kept as Redis keeps them (bytes, and floats for scores), each type its
own class so a command on a key of another type raises ``BadDataError`` as Redis
answers WRONGTYPE. ``InProcessRedis`` builds the lease protocol's operations on
these commands.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from dbdaora.backends.redis.protocol import HashValue, Members
from dbdaora.exceptions import BackendError, BadDataError
from dbdaora.lease import LEASE_SECONDS


class Hash(dict[bytes, bytes]):
    """A hash's fields; its own type, so a hash and a sorted set are told apart."""


class ZSet(dict[bytes, float]):
    """A sorted set's members and scores."""


Value = Hash | ZSet | bytes


def _bytes(value: str | bytes) -> bytes:
    return value.encode() if isinstance(value, str) else value


class Keyspace:
    """Keys and their deadlines, the commands on them, and a switch to fail every call."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.down = False
        self._clock = clock
        self._data: dict[bytes, Value] = {}
        self._deadlines: dict[bytes, float] = {}

    # -- inspection, for tests and demos -------------------------------------------

    def raw(self, key: bytes) -> Value | None:
        """The value under ``key`` (a dict for hashes and sets, bytes for markers)."""
        return self._get(key)

    def ttl(self, key: bytes) -> float | None:
        """Seconds left, None without expiry; like Redis TTL but -2 is None via ``raw``."""
        if self._get(key) is None or key not in self._deadlines:
            return None
        return self._deadlines[key] - self._clock()

    def keys(self) -> list[bytes]:
        return [key for key in list(self._data) if self._get(key) is not None]

    # -- Redis's commands, on the dicts ----------------------------------------------

    def _check(self) -> None:
        if self.down:
            raise BackendError("connection lost", url=self.url) from ConnectionError(
                "memory store is down"
            )

    def _get(self, key: bytes) -> Value | None:
        deadline = self._deadlines.get(key)
        if deadline is not None and deadline <= self._clock():
            del self._data[key]
            del self._deadlines[key]
            return None
        return self._data.get(key)

    def _set(self, key: bytes, value: Value, ttl: float | None) -> None:
        self._data[key] = value
        if ttl:
            self._deadlines[key] = self._clock() + ttl
        else:
            self._deadlines.pop(key, None)

    def _delete(self, key: bytes) -> None:
        self._data.pop(key, None)
        self._deadlines.pop(key, None)

    def _wrong_type(self, key: bytes) -> BadDataError:
        return BadDataError(
            f"Redis refused the data: WRONGTYPE Operation against a key holding the wrong kind "
            f"of value ({key!r})",
            url=self.url,
        )

    def _hash(self, key: bytes) -> Hash:
        """The hash at ``key``; a new empty one (not stored) where there is none."""
        value = self._get(key)
        if value is None:
            return Hash()
        if type(value) is not Hash:
            raise self._wrong_type(key)
        return value

    def _zset(self, key: bytes) -> ZSet:
        """The sorted set at ``key``; a new empty one (not stored) where there is none."""
        value = self._get(key)
        if value is None:
            return ZSet()
        if type(value) is not ZSet:
            raise self._wrong_type(key)
        return value

    def _string(self, key: bytes) -> bytes | None:
        """GET: the string at ``key``, None where there is none."""
        value = self._get(key)
        if value is not None and not isinstance(value, bytes):
            raise self._wrong_type(key)
        return value

    def _expire(self, key: bytes, ttl: int | None) -> None:
        """EXPIRE where ``ttl`` asks for one: a key that is gone stays gone."""
        if ttl and self._get(key) is not None:
            self._deadlines[key] = self._clock() + ttl

    def _hset(self, key: bytes, value: HashValue) -> None:
        """HSET: the fields set, the hash made if absent (with no fields, nothing)."""
        if value:
            self._data[key] = current = self._hash(key)
            current.update((field, _bytes(text)) for field, text in value.items())

    def _zadd(self, key: bytes, members: Members) -> None:
        """ZADD: the members added, the set made if absent (with no members, nothing).

        Scores become floats, as Redis keeps them, whatever number the fallback held.
        """
        if members:
            self._data[key] = current = self._zset(key)
            current.update((member.encode(), float(score)) for member, score in members)

    def _zrem(self, key: bytes, members: Sequence[str]) -> None:
        """ZREM: a set left empty is gone, as in Redis."""
        current = self._zset(key)
        for member in members:
            current.pop(member.encode(), None)
        if key in self._data and not current:
            self._delete(key)

    def _set_nx_get(self, marker: bytes, token: bytes) -> bytes | None:
        """SET NX GET EX LEASE_SECONDS: the value before; ``token`` set where there was none."""
        value = self._string(marker)
        if value is None:
            self._set(marker, token, LEASE_SECONDS)
        return value
