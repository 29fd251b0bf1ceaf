"""What waits for the multiplexer's replies: one caller's, or the connection's own.

A waiter takes its replies one at a time, in the order the connection reads them
(``deliver``), or the failure of the connection that owed them (``fail``). A
waiter that raises from ``deliver`` breaks the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from dbdaora.backends.redis.wire.commands import Parser


def _error(reply: ResponseError) -> ResponseError:
    """redis-py's exception for an error reply (NOSCRIPT gets its own)."""
    message = str(reply)
    if message.startswith("NOSCRIPT "):
        return NoScriptError(message.removeprefix("NOSCRIPT "))
    return reply


def _acknowledged(reply: Any) -> None:
    """Check the reply to a command sent for the connection's sake (tracking, CACHING,
    PING): an error breaks the connection, whose reads would go untracked."""
    if isinstance(reply, ResponseError):
        raise RedisConnectionError(f"Redis refused client tracking: {reply}")


class Waiter:
    """A caller waiting for replies; ``deliver`` takes them one at a time, in order."""

    __slots__ = ("future",)

    future: asyncio.Future[Any]

    def deliver(self, reply: Any) -> None:
        raise NotImplementedError

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class Ack(Waiter):
    """The reply to a command sent for the connection's sake: checked, then dropped."""

    __slots__ = ()

    def __init__(self) -> None:
        self.future = asyncio.get_running_loop().create_future()

    def deliver(self, reply: Any) -> None:
        _acknowledged(reply)

    def fail(self, exc: BaseException) -> None:
        return None


class Call(Waiter):
    """The reply one caller waits for."""

    __slots__ = ("parse",)

    def __init__(self, future: asyncio.Future[Any], parse: Parser) -> None:
        self.future = future
        self.parse = parse

    def deliver(self, reply: Any) -> None:
        future = self.future
        if future.done():
            return
        if isinstance(reply, ResponseError):
            future.set_exception(_error(reply))
        elif self.parse is None:
            future.set_result(reply)
        else:
            try:
                future.set_result(self.parse(reply))
            except Exception as exc:
                future.set_exception(exc)


class CachedCall(Call):
    """The reply of a read sent after CLIENT CACHING YES: that one's reply comes first."""

    __slots__ = ("acked",)

    def __init__(self, future: asyncio.Future[Any], parse: Parser) -> None:
        super().__init__(future, parse)
        self.acked = False

    def deliver(self, reply: Any) -> None:
        if self.acked:
            super().deliver(reply)
            return
        self.acked = True
        _acknowledged(reply)


class Batch(Waiter):
    """The replies of one caller's several commands: all of them, or the first error.

    ``cached``: each command went after CLIENT CACHING YES, whose replies are dropped.
    """

    __slots__ = ("cached", "parsers", "replies")

    def __init__(
        self, future: asyncio.Future[Any], parsers: list[Parser], *, cached: bool = False
    ) -> None:
        self.future = future
        self.parsers = parsers
        self.cached = cached
        self.replies: list[Any] = []

    def deliver(self, reply: Any) -> None:
        replies = self.replies
        replies.append(reply)
        if len(replies) < len(self.parsers) * (2 if self.cached else 1) or self.future.done():
            return
        if self.cached:
            for ack in replies[0::2]:
                _acknowledged(ack)
            replies = replies[1::2]
        for reply in replies:
            if isinstance(reply, ResponseError):
                self.future.set_exception(_error(reply))
                return
        try:
            parsed = [
                reply if parse is None else parse(reply)
                for parse, reply in zip(self.parsers, replies, strict=True)
            ]
        except Exception as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(parsed)
