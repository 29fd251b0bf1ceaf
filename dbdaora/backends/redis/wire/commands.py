"""The multiplexer's command target: redis-py's command methods, as encoded commands.

Operations are functions of a command target (see ``transport``); on redis-py's
client they run its methods. ``COMMANDS`` takes the same calls and returns what
``Multiplexer.run`` sends instead: the command packed by hiredis, and the parser
that gives the raw reply, RESP2 or RESP3, the shape redis-py's client would
return (``decode_responses=False``, RESP2). It only packs arguments and names
parsers; it must not hold connections, nor what a command means to dbdaora.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import hiredis

Parser = Callable[[Any], Any] | None
Command = tuple[bytes, Parser, int]  # encoded command(s), reply parser, command count


# A tracking connection speaks RESP3 (see ``tracking``): a hash comes as a map, which
# hiredis makes a dict, and scored members as [member, score] pairs with double
# scores; RESP2 gives flat arrays with scores as text. Both parse alike.


def _pairs(reply: list[Any] | dict[Any, Any]) -> dict[Any, Any]:
    if type(reply) is dict:
        return reply
    items = iter(reply)
    return dict(zip(items, items, strict=True))


def _scored(reply: list[Any]) -> list[tuple[Any, float]]:
    if reply and type(reply[0]) is list:
        return [(member, float(score)) for member, score in reply]
    items = iter(reply)
    return [(member, float(score)) for member, score in zip(items, items, strict=True)]


def _found(reply: list[Any]) -> list[list[Any]]:
    """GEOSEARCH ... WITHDIST WITHCOORD as redis-py parses it: [member, dist, (lon, lat)]."""
    return [[member, float(dist), (float(lon), float(lat))] for member, dist, (lon, lat) in reply]


def _ok(reply: Any) -> bool | None:
    return True if reply == b"OK" else None


def _text(reply: bytes) -> str:
    return reply.decode()


class Commands:
    """The redis-py command methods dbdaora uses, as encoded commands.

    Each method takes redis-py's arguments and returns what ``Multiplexer.run``
    sends; the reply comes back shaped as redis-py's client would return it.
    """

    @staticmethod
    def _command(parse: Parser, *args: Any) -> Command:
        return hiredis.pack_command(args), parse, 1

    def ping(self) -> Command:
        return self._command(None, b"PING")

    def hgetall(self, key: bytes) -> Command:
        return self._command(_pairs, b"HGETALL", key)

    def hmget(self, key: bytes, fields: Sequence[bytes]) -> Command:
        return self._command(None, b"HMGET", key, *fields)

    def exists(self, *keys: bytes) -> Command:
        return self._command(None, b"EXISTS", *keys)

    def get(self, key: bytes) -> Command:
        return self._command(None, b"GET", key)

    def hlen(self, key: bytes) -> Command:
        return self._command(None, b"HLEN", key)

    def delete(self, *keys: bytes) -> Command:
        return self._command(None, b"DEL", *keys)

    def set(
        self, key: bytes, value: Any, ex: int | None = None, nx: bool = False, get: bool = False
    ) -> Command:
        args: list[Any] = [b"SET", key, value]
        if ex is not None:
            args += [b"EX", ex]
        if nx:
            args.append(b"NX")
        if get:
            args.append(b"GET")
        return self._command(None if get else _ok, *args)

    def expire(self, key: bytes, seconds: int) -> Command:
        return self._command(bool, b"EXPIRE", key, seconds)

    def hset(self, key: bytes, *, mapping: Mapping[Any, Any]) -> Command:
        pairs = (item for pair in mapping.items() for item in pair)
        return self._command(None, b"HSET", key, *pairs)

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Command:
        return self._command(None, b"EVALSHA", sha, numkeys, *keys_and_args)

    def script_load(self, source: str) -> Command:
        return self._command(_text, b"SCRIPT", b"LOAD", source)

    def zrange(
        self,
        key: bytes,
        start: Any,
        end: Any,
        desc: bool = False,
        withscores: bool = False,
        byscore: bool = False,
        offset: int | None = None,
        num: int | None = None,
    ) -> Command:
        args: list[Any] = [b"ZRANGE", key, start, end]
        if byscore:
            args.append(b"BYSCORE")
        if desc:
            args.append(b"REV")
        if offset is not None and num is not None:
            args += [b"LIMIT", offset, num]
        if withscores:
            args.append(b"WITHSCORES")
        return self._command(_scored if withscores else None, *args)

    def zrem(self, key: bytes, *members: Any) -> Command:
        return self._command(None, b"ZREM", key, *members)

    def zcard(self, key: bytes) -> Command:
        return self._command(None, b"ZCARD", key)

    def geosearch(
        self,
        key: bytes,
        *,
        longitude: float,
        latitude: float,
        radius: float,
        unit: str,
        sort: str,
        count: int | None,
        withdist: bool,
        withcoord: bool,
    ) -> Command:
        args: list[Any] = [b"GEOSEARCH", key, b"FROMLONLAT", longitude, latitude]
        args += [b"BYRADIUS", radius, unit, sort]
        if count is not None:
            args += [b"COUNT", count]
        assert withdist and withcoord, "the one reply shape _found parses"
        return self._command(_found, *args, b"WITHDIST", b"WITHCOORD")


COMMANDS = Commands()
