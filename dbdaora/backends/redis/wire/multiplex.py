"""One connection carries every command of a store; replies are matched in order.

Redis answers the commands of a connection in the order it read them, so a
client may write commands without waiting for earlier answers and match each
reply to the oldest command still owed one. The ``Multiplexer`` does that: a
command is encoded where it is asked for and queued; the queue goes out in one
write per event-loop iteration (at once, when no other task could add to it), so
commands started together — many gets under ``asyncio.gather``, the concurrent
requests of a service — share a round trip, and a batch need not wait for the
previous one's answers. One reader task parses replies with hiredis and hands
each to its caller.

Every caller gets its own reply or its own error. A caller cancelled before its
commands leave is left out of the write; one cancelled after has its replies read
and dropped, so the callers behind it still get theirs. A connection that breaks,
or owes replies and receives nothing for ``socket_timeout`` seconds, fails the
callers it owes and is replaced by a new one on the next command.

Operations are the same functions of a command target that run on redis-py's
client elsewhere in the package; here the target is ``COMMANDS``, which turns
each call into its arguments and the parser that gives the reply the shape
redis-py would.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dbdaora.backends.redis.wire.pipelining import Operation, alone

Parser = Callable[[Any], Any] | None
Command = tuple[bytes, Parser, int]  # encoded command(s), reply parser, command count
# Callers queued in one iteration before their commands go without waiting for
# its end, so the server works on them while the rest are queued.
EARLY_FLUSH = 128


def _pairs(reply: list[Any]) -> dict[Any, Any]:
    items = iter(reply)
    return dict(zip(items, items, strict=True))


def _scored(reply: list[Any]) -> list[tuple[Any, float]]:
    items = iter(reply)
    return [(member, float(score)) for member, score in zip(items, items, strict=True)]


def _ok(reply: Any) -> bool | None:
    return True if reply == b"OK" else None


def _text(reply: bytes) -> str:
    return reply.decode()


class Commands:
    """The redis-py command methods dbdaora uses, as encoded commands.

    Each method takes redis-py's arguments and returns what ``Multiplexer.run``
    sends; the reply comes back shaped as redis-py's client would return it
    (``decode_responses=False``, RESP2).
    """

    @staticmethod
    def _command(parse: Parser, *args: Any) -> Command:
        return hiredis.pack_command(args), parse, 1

    def hgetall(self, key: bytes) -> Command:
        return self._command(_pairs, b"HGETALL", key)

    def hmget(self, key: bytes, fields: Sequence[bytes]) -> Command:
        return self._command(None, b"HMGET", key, *fields)

    def exists(self, *keys: bytes) -> Command:
        return self._command(None, b"EXISTS", *keys)

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

    def zcard(self, key: bytes) -> Command:
        return self._command(None, b"ZCARD", key)


COMMANDS = Commands()


def _error(reply: ResponseError) -> ResponseError:
    """redis-py's exception for an error reply (NOSCRIPT gets its own)."""
    message = str(reply)
    if message.startswith("NOSCRIPT "):
        return NoScriptError(message.removeprefix("NOSCRIPT "))
    return reply


class _Waiter:
    """A caller waiting for replies; ``deliver`` takes them one at a time, in order."""

    __slots__ = ("future",)

    future: asyncio.Future[Any]

    def deliver(self, reply: Any) -> None:
        raise NotImplementedError

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


class _Call(_Waiter):
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


class _Batch(_Waiter):
    """The replies of one caller's several commands: all of them, or the first error."""

    __slots__ = ("parsers", "replies")

    def __init__(self, future: asyncio.Future[Any], parsers: list[Parser]) -> None:
        self.future = future
        self.parsers = parsers
        self.replies: list[Any] = []

    def deliver(self, reply: Any) -> None:
        replies = self.replies
        replies.append(reply)
        if len(replies) < len(self.parsers) or self.future.done():
            return
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


class _Replies(asyncio.Protocol):
    """Takes over a connection's transport: each reply goes to the oldest waiter.

    Replies are parsed as the loop reads them, with no reader task in between,
    so a caller wakes one loop iteration after its reply arrives.
    """

    def __init__(self, owner: Multiplexer, writer: asyncio.StreamWriter) -> None:
        self._owner = owner
        # asyncio closes a transport when its StreamWriter is collected: keep it.
        self._writer = writer
        self._parser = hiredis.Reader(replyError=ResponseError)
        self.replies = 0
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        parser, owed = self._parser, self._owner._owed
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not False:
                self.replies += 1
                owed.popleft().deliver(reply)
        except Exception as exc:  # a protocol error or a reply nobody asked for
            self._owner._drop(RedisConnectionError(f"bad data from Redis: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        owner = self._owner
        failure = owner._stalled or RedisConnectionError(
            f"Error reading from Redis: {exc}" if exc else "Connection closed by server."
        )
        if owner._protocol is self:
            owner._drop(failure)
        if not self.lost.done():
            self.lost.set_result(None)


class Multiplexer:
    """All of a store's commands on one connection, replies handed out in order.

    Args:
        connect: makes a new redis-py connection, not yet connected.
        stall_timeout: seconds a connection owing replies may receive nothing
            before it counts as dead.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        *,
        stall_timeout: float,
    ) -> None:
        self._make_connection = connect
        self._stall_timeout = stall_timeout
        self._transport: asyncio.Transport | None = None
        self._protocol: _Replies | None = None
        self._opening: asyncio.Future[None] | None = None
        self._queued: list[tuple[_Waiter, bytes, int]] = []
        self._flush_scheduled = False
        self._owed: collections.deque[_Waiter] = collections.deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._stalled: RedisTimeoutError | None = None
        self._closed = False

    # Plain functions returning the future: a coroutine here would be one more
    # frame for every reply to pass through.
    def run(self, operation: Operation) -> asyncio.Future[Any]:
        """The reply to ``operation``'s command."""
        data, parse, count = operation(COMMANDS)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue(_Call(future, parse), data, count)
        return future

    def run_all(self, operations: list[Operation]) -> asyncio.Future[list[Any]]:
        """The replies to ``operations``' commands, sent together; the first error raised."""
        commands = [operation(COMMANDS) for operation in operations]
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        batch = _Batch(future, [parse for _, parse, _ in commands])
        self._queue(batch, b"".join(data for data, _, _ in commands), len(commands))
        return future

    def _queue(self, waiter: _Waiter, data: bytes, count: int) -> None:
        if self._closed:
            raise RedisConnectionError("the Redis store is closed")
        self._queued.append((waiter, data, count))
        if self._transport is None:
            if self._opening is None:
                self._opening = asyncio.ensure_future(self._open())
        elif self._flush_scheduled:
            if len(self._queued) >= EARLY_FLUSH:
                self._flush()
        else:
            loop = asyncio.get_running_loop()
            if alone(loop):
                self._flush()
            else:
                self._flush_scheduled = True
                loop.call_soon(self._flush_scheduled_write)

    def _flush_scheduled_write(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        """Write every queued command whose caller still waits, in one write."""
        transport = self._transport
        if transport is None:  # the connection broke since: its replacement sends them
            return
        queued, self._queued = self._queued, []
        chunks = []
        owed = self._owed
        for waiter, data, count in queued:
            if waiter.future.done():
                continue
            chunks.append(data)
            owed.extend([waiter] * count)
        if chunks:
            transport.write(b"".join(chunks))

    async def _open(self) -> None:
        """Open a connection for the queued commands, or fail them with the reason."""
        connection = self._make_connection()
        try:
            # redis-py leaves connect() unannotated
            await connection.connect()  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._opening = None
            queued, self._queued = self._queued, []
            for waiter, _, _ in queued:
                waiter.fail(exc)
            return
        self._opening = None
        # redis-py has done the handshake (AUTH, SELECT, ...) and read its replies;
        # the transport is ours from here, and redis-py forgets it.
        writer = connection._writer
        assert writer is not None
        connection._writer = connection._reader = None
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        if self._closed:
            transport.close()
            return
        self._protocol = _Replies(self, writer)
        transport.set_protocol(self._protocol)
        self._transport = transport
        self._watch(0, owed=False)
        self._flush()

    def _watch(self, delivered: int, *, owed: bool) -> None:
        """Drop the connection when replies owed a whole stall_timeout ago are still owed.

        Args:
            delivered: a count that moves whenever a reply arrives.
            owed: whether replies were owed then.
        """
        if owed and self._owed and delivered == self._delivered() and self._transport:
            self._stalled = RedisTimeoutError(
                f"Redis sent nothing for {self._stall_timeout}s while owing replies"
            )
            self._transport.abort()  # connection_lost fails the owed callers
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            self._stall_timeout,
            functools.partial(self._watch, self._delivered(), owed=bool(self._owed)),
        )

    def _delivered(self) -> int:
        return 0 if self._protocol is None else self._protocol.replies

    def _drop(self, failure: Exception) -> None:
        """Forget a dead connection and fail every caller it owed a reply."""
        transport, self._transport, self._protocol = self._transport, None, None
        self._stalled = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if transport is not None:
            transport.abort()
        owed, self._owed = self._owed, collections.deque()
        for waiter in owed:
            waiter.fail(failure)
        if self._queued and not self._closed and self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    async def close(self) -> None:
        """Close the connection; callers still waiting get ConnectionError."""
        self._closed = True
        queued, self._queued = self._queued, []
        for waiter, _, _ in queued:
            waiter.fail(RedisConnectionError("the Redis store is closed"))
        if self._opening is not None:
            self._opening.cancel()
            await asyncio.gather(self._opening, return_exceptions=True)
        protocol = self._protocol
        if protocol is not None:
            self._drop(RedisConnectionError("the Redis store is closed"))
            await protocol.lost
