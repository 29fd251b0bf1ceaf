"""What a transport is, and the plainest one: ``Direct``.

A transport takes operations to a server and brings their results back. An
operation is a function of a redis-py command target (the client, one of its
pipelines, or the multiplexer's encoder ``commands.COMMANDS``, which share their
command methods), so the same operation runs on every transport. A transport
holds connections and batching state; it must not hold what a command means to
dbdaora, nor translate driver errors (its link does, once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

Operation = Callable[[Any], Any]


class Transport(Protocol):
    """How a link's operations reach the server."""

    def run(self, operation: Operation, *, cached: bool = False) -> Awaitable[Any]:
        """``cached``: a read whose answer a cache may keep, for Redis to track
        (a transport that cannot ignores it, and its link says it cannot track)."""
        ...

    def run_all(
        self, operations: list[Operation], *, cached: bool = False
    ) -> Awaitable[list[Any]]: ...

    async def close(self) -> None: ...


class Direct:
    """Each call on the client as it comes: one pooled connection per call.

    No connection of a pool tracks keys: ``cached`` is ignored.
    """

    def __init__(self, client: Any) -> None:
        self.client = client

    async def run(
        self, operation: Operation, node: str | None = None, *, cached: bool = False
    ) -> Any:
        return await operation(self.client)

    async def run_all(
        self,
        operations: list[Operation],
        nodes: Sequence[str | None] | None = None,
        *,
        settle: bool = False,
        cached: bool = False,
    ) -> list[Any]:
        return await execute(self.client, operations, settle=settle)

    async def close(self) -> None:
        await self.client.aclose()


def alone(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no other callback is ready to run in this iteration, so none can join.

    asyncio's loop keeps its ready callbacks in ``_ready``; a loop without it
    (uvloop) is always asked to wait one iteration.
    """
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


async def execute(client: Any, operations: list[Operation], *, settle: bool = False) -> list[Any]:
    """Operations as one pipeline on ``client``; the first error in it is raised, or
    with ``settle`` each error is returned in its operation's place."""
    pipe = client.pipeline(transaction=False)
    for operation in operations:
        operation(pipe)
    results: list[Any] = await pipe.execute(raise_on_error=False)
    if settle:
        return results
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results


class _Recorder:
    """Stands in for a command target: records the command an operation calls, unsent."""

    __slots__ = ("args", "command")

    def __getattr__(self, command: str) -> Any:
        def record(*args: Any, **_: Any) -> None:
            self.command, self.args = command, args

        return record


def key_of(operation: Operation) -> bytes | str | None:
    """The key an operation's command touches: its first argument (EVAL, EVALSHA: its
    first KEY); None for a command of no key (PING)."""
    recorder = _Recorder()
    operation(recorder)
    args = getattr(recorder, "args", ())
    index = 2 if getattr(recorder, "command", None) in ("eval", "evalsha") else 0
    key = args[index] if len(args) > index else None
    return key if isinstance(key, bytes | str) and key else None
