"""Tying a driver's connections to the event loop that opened them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable


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
