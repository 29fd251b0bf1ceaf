"""How operations reach a redis-py client: batched per event-loop iteration, or directly.

``AutoPipeline`` serves the cluster store (the single-node store multiplexes one
connection instead, see ``multiplex``); ``Direct`` serves both when a session
turns auto-pipelining off.

Each operation is a function of a redis-py command target — the client or a
pipeline, which share their command methods. The first operation of an
iteration leads: it yields once, so that every other task ready in the same
iteration can queue its operations, then sends the lot as one non-transactional
pipeline on one connection. A leader left alone runs on the client directly, and
one with no other task ready to run does not even yield: a sequential caller
pays nothing.

Every caller gets its own result or its own error. A batch is sent by a task of
its own, so cancelling one caller — the leader included — never takes the other
callers' commands with it; a caller cancelled before the batch leaves is left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

Operation = Callable[[Any], Any]
Batch = list[tuple[Operation, asyncio.Future[Any]]]


class Transport(Protocol):
    """How a store's operations reach the server."""

    def run(self, operation: Operation) -> Awaitable[Any]: ...

    def run_all(self, operations: list[Operation]) -> Awaitable[list[Any]]: ...

    async def close(self) -> None: ...


class Direct:
    """Each call on the client as it comes: one pooled connection per call."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def run(self, operation: Operation) -> Any:
        return await operation(self.client)

    async def run_all(self, operations: list[Operation]) -> list[Any]:
        return await execute(self.client, operations)

    async def close(self) -> None:
        await self.client.aclose()


class AutoPipeline:
    """Batches operations on one redis-py client, per event-loop iteration."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._forming: Batch | None = None
        # The loop keeps only weak references to tasks: these keep batches in flight.
        self._sending: set[asyncio.Future[Any]] = set()

    async def run(self, operation: Operation) -> Any:
        """The result of ``operation``, sent with whatever else this iteration queues."""
        # run_all for one operation, without its lists: this is every get's path.
        loop = asyncio.get_running_loop()
        if self._forming is None and alone(loop):
            return await operation(self.client)
        future: asyncio.Future[Any] = loop.create_future()
        if self._forming is not None:
            self._forming.append((operation, future))
            return await future
        self._forming = [(operation, future)]
        try:
            await asyncio.sleep(0)
        except BaseException:
            batch, self._forming = self._forming, None
            future.cancel()
            self._send(batch)
            raise
        batch, self._forming = self._forming, None
        if len(batch) == 1:
            return await operation(self.client)
        self._send(batch)
        return await future

    async def run_all(self, operations: list[Operation]) -> list[Any]:
        """The results of ``operations``, all sent in the same round trip."""
        loop = asyncio.get_running_loop()
        if self._forming is None and alone(loop):
            return await self._direct(operations)
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in operations]
        queued = list(zip(operations, futures, strict=True))
        if self._forming is not None:
            self._forming.extend(queued)
        else:
            self._forming = queued
            try:
                await asyncio.sleep(0)
            except BaseException:
                batch, self._forming = self._forming, None
                for future in futures:
                    future.cancel()
                self._send(batch)  # the others' commands still go
                raise
            batch, self._forming = self._forming, None
            if len(batch) == len(operations):
                return await self._direct(operations)
            self._send(batch)
        try:
            return [await future for future in futures]
        finally:
            for future in futures:
                future.cancel()  # only those still pending: the caller left

    async def _direct(self, operations: list[Operation]) -> list[Any]:
        """Operations nobody else joined: sent by their caller, without futures."""
        if len(operations) == 1:
            return [await operations[0](self.client)]
        return await execute(self.client, operations)

    async def close(self) -> None:
        await self.client.aclose()

    def _send(self, batch: Batch) -> None:
        task = asyncio.ensure_future(self._send_many(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send_many(self, batch: Batch) -> None:
        batch = [(operation, future) for operation, future in batch if not future.done()]
        if not batch:
            return
        pipe = self.client.pipeline(transaction=False)
        for operation, _ in batch:
            operation(pipe)
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


def alone(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether no other callback is ready to run in this iteration, so none can join.

    asyncio's loop keeps its ready callbacks in ``_ready``; a loop without it
    (uvloop) is always asked to wait one iteration.
    """
    ready = getattr(loop, "_ready", None)
    return ready is not None and not ready


async def execute(client: Any, operations: list[Operation]) -> list[Any]:
    """Operations as one pipeline on ``client``; the first error in it is raised."""
    pipe = client.pipeline(transaction=False)
    for operation in operations:
        operation(pipe)
    results: list[Any] = await pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, Exception):
            raise result
    return results
