"""One connection carries every command of a store; replies are matched in order.

Redis answers the commands of a connection in the order it read them, so a
client may write commands without waiting for earlier answers and match each
reply to the oldest command still owed one. The ``Multiplexer`` does that: a
command is encoded where it is asked for and queued; the queue goes out in one
write per event-loop iteration (at once, when no other task could add to it), so
commands started together — many gets under ``asyncio.gather``, the concurrent
requests of a service — share a round trip, and a batch need not wait for the
previous one's answers. Replies are parsed with hiredis as the loop reads them,
and each is handed to its caller.

Every caller gets its own reply or its own error. A caller cancelled before its
commands leave is left out of the write; one cancelled after has its replies read
and dropped, so the callers behind it still get theirs. A connection that breaks,
or owes replies and receives nothing for ``socket_timeout`` seconds, fails the
callers it owes and is replaced by a new one on the next command.

With a tracking listener (``tracking``), the connection speaks RESP3 and has
Redis track the keys of the reads run with ``cached``: each goes right after
``CLIENT CACHING YES`` in the same write, and invalidation pushes are handed to
the listeners as they are parsed, in order with the replies. An idle tracking
connection sends a PING every ``stall_timeout``, so one that died silently is
dropped (and the listeners flushed) within two of them.

Operations are the same functions of a command target that run on redis-py's
client elsewhere in the package; here the target is ``commands.COMMANDS``, which
turns each call into its encoded command and the parser that gives the reply the
shape redis-py would.
"""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from dbdaora.backends.redis.wire.commands import COMMANDS
from dbdaora.backends.redis.wire.tracking import CACHING_YES, PING, Tracking
from dbdaora.backends.redis.wire.transport import Operation, alone
from dbdaora.backends.redis.wire.waiters import Ack, Batch, CachedCall, Call, Waiter

# A push frame (RESP3: an invalidation), as hiredis parses it.
_PUSH = hiredis.PushNotification

# Callers queued in one iteration before their commands go without waiting for
# its end, so the server works on them while the rest are queued.
EARLY_FLUSH = 128


class _Connection(asyncio.Protocol):
    """One connection, taken over from redis-py: each reply goes to the oldest waiter.

    Replies are parsed as the loop reads them, with no reader task in between,
    so a caller wakes one loop iteration after its reply arrives. The connection
    keeps the waiters it owes replies; of its multiplexer it knows one thing,
    ``broke``, through which it reports that it is dead and what its waiters fail with.
    """

    def __init__(
        self,
        transport: asyncio.Transport,
        writer: asyncio.StreamWriter,
        broke: Callable[[_Connection, Exception], None],
        pushed: Callable[[list[Any]], None],
    ) -> None:
        self.transport = transport
        # asyncio closes a transport when its StreamWriter is collected: keep it.
        self._writer = writer
        self._broke = broke
        self._pushed = pushed
        self.tracked = False  # HELLO 3 and CLIENT TRACKING sent on it
        self._parser = hiredis.Reader(replyError=ResponseError)
        self.owed: collections.deque[Waiter] = collections.deque()
        self.replies = 0
        # Set by the watchdog before it aborts the transport: what the owed callers get.
        self.stalled: RedisTimeoutError | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        parser, owed = self._parser, self.owed
        parser.feed(data)
        try:
            while (reply := parser.gets()) is not False:
                if type(reply) is _PUSH:
                    self._pushed(reply)
                    continue
                self.replies += 1
                owed.popleft().deliver(reply)
        except Exception as exc:  # a protocol error or a reply nobody asked for
            self._broke(self, RedisConnectionError(f"bad data from Redis: {exc}"))

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._broke(
            self,
            self.stalled
            or RedisConnectionError(
                f"Error reading from Redis: {exc}" if exc else "Connection closed by server."
            ),
        )
        if not self.lost.done():
            self.lost.set_result(None)


class Multiplexer:
    """All of a store's commands on one connection, replies handed out in order.

    It holds the connection, the queue of commands not yet written, and the
    watchdog; it must not hold what a command means, nor turn driver errors
    into dbdaora's (its link does).

    Args:
        connect: makes a new redis-py connection, not yet connected.
        stall_timeout: seconds a connection owing replies may receive nothing
            before it counts as dead.
        tracking: the listeners of invalidations; a connection tracks while it has some.
    """

    def __init__(
        self,
        connect: Callable[[], AbstractConnection],
        *,
        stall_timeout: float,
        tracking: Tracking | None = None,
    ) -> None:
        self._make_connection = connect
        self._stall_timeout = stall_timeout
        self._tracking = tracking
        self._connection: _Connection | None = None
        self._opening: asyncio.Future[None] | None = None
        self._queued: list[tuple[Waiter, bytes, int]] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False

    # Plain functions returning the future: a coroutine here would be one more
    # frame for every reply to pass through.
    def run(self, operation: Operation, *, cached: bool = False) -> asyncio.Future[Any]:
        """The reply to ``operation``'s command; ``cached``: Redis tracks its keys."""
        data, parse, count = operation(COMMANDS)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if cached and self._tracks():
            self._queue(CachedCall(future, parse), CACHING_YES + data, count + 1)
        else:
            self._queue(Call(future, parse), data, count)
        return future

    def run_all(
        self, operations: list[Operation], *, cached: bool = False
    ) -> asyncio.Future[list[Any]]:
        """The replies to ``operations``' commands, sent together; the first error raised."""
        commands = [operation(COMMANDS) for operation in operations]
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        if not commands:  # no reply would ever complete the batch
            future.set_result([])
            return future
        cached = cached and self._tracks()
        batch = Batch(future, [parse for _, parse, _ in commands], cached=cached)
        prefix = CACHING_YES if cached else b""
        data = b"".join(prefix + data for data, _, _ in commands)
        self._queue(batch, data, len(commands) * (2 if cached else 1))
        return future

    def _tracks(self) -> bool:
        """Whether reads are tracked: the link has listeners. A connection opened before
        the first one starts tracking now, ahead of the commands not yet written."""
        tracking = self._tracking
        if tracking is None or not tracking.listeners:
            return False
        connection = self._connection
        if connection is not None and not connection.tracked:
            self._start_tracking(connection)
            tracking.lost()  # what was read on it untracked may have changed
        return True

    @property
    def tracking_live(self) -> bool:
        """Whether a connection is open and tracking (its replies may still be owed).

        A connection opened anew needs no flush: the loss of the one before it
        flushed, and nothing read before the first one is cached tracked."""
        return self._connection is not None and self._connection.tracked

    def _start_tracking(self, connection: _Connection) -> None:
        assert self._tracking is not None
        connection.transport.write(self._tracking.turn_on)
        connection.owed.extend([Ack(), Ack()])
        connection.tracked = True

    def _pushed(self, frame: list[Any]) -> None:
        if self._tracking is not None:
            self._tracking.pushed(frame)

    def _queue(self, waiter: Waiter, data: bytes, count: int) -> None:
        if self._closed:
            raise RedisConnectionError("the Redis store is closed")
        self._queued.append((waiter, data, count))
        if self._connection is None:
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
        connection = self._connection
        if connection is None:  # the connection broke since: its replacement sends them
            return
        queued, self._queued = self._queued, []
        chunks = []
        owed = connection.owed
        for waiter, data, count in queued:
            if waiter.future.done():
                continue
            chunks.append(data)
            owed.extend([waiter] * count)
        if chunks:
            connection.transport.write(b"".join(chunks))

    async def _open(self) -> None:
        """Open a connection for the queued commands, or fail them with the reason."""
        opened = self._make_connection()
        try:
            # redis-py leaves connect() unannotated
            await opened.connect()  # type: ignore[no-untyped-call]
        except Exception as exc:
            self._opening = None
            queued, self._queued = self._queued, []
            for waiter, _, _ in queued:
                waiter.fail(exc)
            return
        self._opening = None
        # redis-py has done the handshake (TLS, AUTH, HELLO, SELECT, CLIENT SETNAME,
        # as the URL and options ask) and read its replies. It has no public way to
        # hand the socket over afterwards, so its private StreamWriter is taken and
        # both streams unset: redis-py then neither reads the replies nor closes the
        # transport, which is ours from here.
        writer = opened._writer
        assert writer is not None
        opened._writer = opened._reader = None
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        if self._closed:
            transport.close()
            return
        connection = _Connection(transport, writer, self._broke, self._pushed)
        transport.set_protocol(connection)
        self._connection = connection
        if self._tracking is not None and self._tracking.listeners:
            self._start_tracking(connection)
        self._watch(0, owed=False)
        self._flush()

    def _broke(self, connection: _Connection, failure: Exception) -> None:
        """A connection's report that it is dead: forget it, if it is still the current one."""
        if connection is self._connection:
            self._drop(failure)

    def _watch(self, delivered: int, *, owed: bool) -> None:
        """Drop the connection when replies owed a whole stall_timeout ago are still owed.

        Args:
            delivered: a count that moves whenever a reply arrives.
            owed: whether replies were owed then.
        """
        connection = self._connection
        if (
            connection is not None
            and connection.tracked
            and not connection.owed
            and not self._queued
        ):
            connection.transport.write(PING)  # a reply owed: silence now drops it
            connection.owed.append(Ack())
        if owed and connection is not None and connection.owed and delivered == connection.replies:
            connection.stalled = RedisTimeoutError(
                f"Redis sent nothing for {self._stall_timeout}s while owing replies"
            )
            connection.transport.abort()  # connection_lost fails the owed callers
            return
        self._watchdog = asyncio.get_running_loop().call_later(
            self._stall_timeout,
            functools.partial(
                self._watch,
                0 if connection is None else connection.replies,
                owed=connection is not None and bool(connection.owed),
            ),
        )

    def _drop(self, failure: Exception) -> None:
        """Forget the current connection and fail every caller it owed a reply."""
        connection, self._connection = self._connection, None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if connection is not None:
            connection.transport.abort()
            owed, connection.owed = connection.owed, collections.deque()
            for waiter in owed:
                waiter.fail(failure)
        if self._tracking is not None:
            self._tracking.lost()  # what changed while it was away is unknown
        if self._queued and not self._closed and self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    def reconnect(self, failure: Exception) -> None:
        """Drop the connection now (the server is no longer the one to talk to): the
        callers it owes replies get ``failure``, and the next command opens a new one."""
        if self._connection is not None:
            self._drop(failure)

    async def close(self) -> None:
        """Close the connection; callers still waiting get ConnectionError."""
        self._closed = True
        queued, self._queued = self._queued, []
        for waiter, _, _ in queued:
            waiter.fail(RedisConnectionError("the Redis store is closed"))
        if self._opening is not None:
            self._opening.cancel()
            await asyncio.gather(self._opening, return_exceptions=True)
        connection = self._connection
        if connection is not None:
            self._drop(RedisConnectionError("the Redis store is closed"))
            await connection.lost
