"""Time bounds for many concurrent calls, with one timer at a time.

``asyncio.timeout()`` schedules, reschedules and cancels a timer handle for every
call it bounds; a session making thousands of Redis calls a second spent about a
third of its time there. Every call a ``Deadlines`` bounds gets the same timeout,
so deadlines fall in the order calls start: one timer, set for the oldest call
still running, is enough. An overdue call's task is cancelled, and the
cancellation comes out of ``run`` as ``TimeoutError``, as with asyncio.timeout().
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class Deadlines:
    """Bounds each call made through ``run`` by ``seconds``."""

    __slots__ = ("_expired", "_loop", "_running", "_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def run(self, call: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """``await call(*args, **kwargs)``, or ``TimeoutError`` once ``seconds`` have passed."""
        task = self.enter()
        if task is None:
            async with asyncio.timeout(self.seconds):
                return await call(*args, **kwargs)
        try:
            return await call(*args, **kwargs)
        except asyncio.CancelledError:
            self.raise_if_expired(task)
            raise
        finally:
            self.leave(task)

    # enter / raise_if_expired / leave are run's steps, for a caller on a hot path
    # that cannot spare the coroutine frame run adds.

    def enter(self) -> asyncio.Task[Any] | None:
        """Start the current task's deadline; None when it needs a timer of its own.

        A task already bounded here (a nested call), or code outside a task, gets
        None and should use ``asyncio.timeout(seconds)``.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None or task in self._running:
            return None
        if loop is not self._loop:  # asyncio.run again: the old loop's timer is gone
            self._loop, self._timer = loop, None
            self._running.clear()
            self._expired.clear()
        deadline = loop.time() + self.seconds
        self._running[task] = deadline
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._expire)
        return task

    def raise_if_expired(self, task: asyncio.Task[Any]) -> None:
        """On a CancelledError in ``task``: TimeoutError if the cancel was its deadline's."""
        if self.take_expired(task):
            raise TimeoutError(f"no answer within {self.seconds}s") from None

    def take_expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task``'s cancel was its deadline's; if so the cancel is taken back,
        for a caller that raises its own error in place of ``TimeoutError``."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def leave(self, task: asyncio.Task[Any]) -> None:
        self._running.pop(task, None)

    def _expire(self) -> None:
        assert self._loop is not None
        self._timer = None
        now = self._loop.time()
        for task, deadline in list(self._running.items()):
            if deadline > now:
                self._timer = self._loop.call_at(deadline, self._expire)
                return
            del self._running[task]
            self._expired.add(task)
            task.cancel()
