"""Tying a driver's connections, and background tasks, to the event loop that opened them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable
from typing import Any


async def _running_until_closed(
    close: Callable[[], Awaitable[object]],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await close()


def close_with_loop(close: Callable[[], Awaitable[object]]) -> AsyncGenerator[None, None]:
    """Await ``close()`` when the running event loop shuts down (``asyncio.run`` ending).

    An async generator first iterated in a loop is closed by that loop's
    ``shutdown_asyncgens()``; stepping this one to its ``yield`` registers it.
    Keep the returned generator: ``aclose()`` on it closes early, and dropping it
    would close at garbage collection instead.
    """
    closer = _running_until_closed(close)
    with contextlib.suppress(StopIteration):
        closer.asend(None).send(None)
    return closer


async def stop_tasks(tasks: Iterable[asyncio.Future[Any] | None]) -> None:
    """Cancel each task of the running loop that is not done, and wait until it is: a
    call it had in flight is over before its store closes. Their errors are dropped."""
    loop = asyncio.get_running_loop()
    for task in tasks:
        if task is not None and not task.done() and task.get_loop() is loop:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
