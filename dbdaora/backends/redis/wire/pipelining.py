"""Auto-pipelining on a redis-py client: operations batched per event-loop iteration.

``AutoPipeline`` serves the cluster link (the single-node link multiplexes one
connection instead, see ``multiplex``).

The first operation of an iteration leads: it yields once, so that every other
task ready in the same iteration can queue its operations, then sends the lot
as one non-transactional pipeline on one connection. A leader left alone runs on
the client directly, and one with no other task ready to run does not even
yield: a sequential caller pays nothing.

Every caller gets its own result or its own error. A batch is sent by a task of
its own, so cancelling one caller — the leader included — never takes the other
callers' commands with it; a caller cancelled before the batch leaves is left out.
Operations that name their master (the cluster link routes them) go one pipeline
per master, each in its own task: a hung master holds back its own callers only.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import Generator, Sequence
from typing import Any

from dbdaora.backends.redis.wire.transport import Operation, alone, execute

Batch = list[tuple[Operation, asyncio.Future[Any], str | None]]
"""Each operation, the future its caller awaits, and its master (None: not routed)."""


class AutoPipeline:
    """Batches operations on one redis-py client, per event-loop iteration.

    It holds the client and the batch being formed; it must not hold what the
    operations mean, nor turn driver errors into dbdaora's (its link does).
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._forming: Batch | None = None
        # The loop keeps only weak references to tasks: these keep batches in flight.
        self._sending: set[asyncio.Future[Any]] = set()

    async def run(
        self, operation: Operation, node: str | None = None, *, cached: bool = False
    ) -> Any:
        """The result of ``operation``, sent with whatever else this iteration queues
        (``cached`` is ignored: a cluster's connections do not track keys)."""
        # run_all's steps for one operation, without its lists: every get comes this way.
        loop = asyncio.get_running_loop()
        forming = self._forming
        if forming is None and alone(loop):
            return await operation(self.client)
        future: asyncio.Future[Any] = loop.create_future()
        if forming is not None:
            forming.append((operation, future, node))
            return await future
        if await self._lead([(operation, future, node)]):
            return await operation(self.client)
        return await future

    async def run_all(
        self,
        operations: list[Operation],
        nodes: Sequence[str | None] | None = None,
        *,
        settle: bool = False,
        cached: bool = False,
    ) -> list[Any]:
        """The results of ``operations``, all sent in the same round trip.

        The first error is raised; with ``settle``, each error is returned in its
        operation's place. ``nodes``: each operation's master, where routed.
        """
        loop = asyncio.get_running_loop()
        forming = self._forming
        if forming is None and alone(loop):
            return await self._direct(operations, settle)
        futures: list[asyncio.Future[Any]] = [loop.create_future() for _ in operations]
        queued = list(zip(operations, futures, nodes or [None] * len(operations), strict=True))
        if forming is not None:
            forming.extend(queued)
        elif await self._lead(queued):
            return await self._direct(operations, settle)
        try:
            if settle:
                await asyncio.wait(futures)
                return [future.exception() or future.result() for future in futures]
            return [await future for future in futures]
        finally:
            for future in futures:
                future.cancel()  # only those still pending: the caller left

    # A generator-based coroutine whose bare yield is asyncio.sleep(0)'s own step
    # (the task runs it again in the next iteration): the leader pays one frame
    # here, not sleep()'s two on top of its own.
    @types.coroutine
    def _lead(self, queued: Batch) -> Generator[None, None, bool]:
        """Open this iteration's batch with ``queued``, let others join it, and send it.

        Returns:
            True when nobody joined: the caller sends its operations itself, without
            the futures. False when the batch is on its way: the caller awaits them.
        """
        mine = len(queued)
        self._forming = queued  # joiners extend this very list
        try:
            yield
        except BaseException:
            self._forming = None
            for _, future, _ in queued[:mine]:
                future.cancel()
            self._send(queued)  # the others' commands still go
            raise
        self._forming = None
        if len(queued) == mine:
            return True
        self._send(queued)
        return False

    async def _direct(self, operations: list[Operation], settle: bool = False) -> list[Any]:
        """Operations nobody else joined: sent by their caller, without futures."""
        if len(operations) == 1 and not settle:
            return [await operations[0](self.client)]
        return await execute(self.client, operations, settle=settle)

    async def close(self) -> None:
        await self.client.aclose()

    def _send(self, batch: Batch) -> None:
        groups: dict[str | None, Batch] = {}
        for entry in batch:
            groups.setdefault(entry[2], []).append(entry)
        for group in groups.values():
            task = asyncio.ensure_future(self._send_many(group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_many(self, batch: Batch) -> None:
        batch = [entry for entry in batch if not entry[1].done()]
        if not batch:
            return
        pipe = self.client.pipeline(transaction=False)
        queued = []
        for operation, future, node in batch:
            # Queuing can raise (a command a cluster pipeline refuses): that caller
            # gets the error; the others' commands still go.
            try:
                operation(pipe)
            except Exception as exc:
                future.set_exception(exc)
            else:
                queued.append((operation, future, node))
        batch = queued
        if not batch:
            return
        try:
            results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future, _ in batch:
                future.cancel()
            raise
        for (_, future, _), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
