"""What a store asks of its connection side (``Link``), and what the two links share.

A link is a store's one way to its server: it opens a transport per event loop,
runs operations and Lua scripts on it, and turns every driver or socket error
into ``BackendError`` at that boundary, but for an error reply about what a key
holds (``DATA_ERRORS``), which becomes ``BadDataError``: Redis is fine then.
``node.NodeLink`` reaches one server, ``cluster.ClusterLink`` a Redis Cluster.
A link must not hold store policy: which commands an operation sends, the
lease protocol, what a reply means.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Coroutine, Sequence
from typing import Any, Generic, Protocol, TypeVar

from redis.exceptions import ResponseError

from dbdaora.backends.loops import close_with_loop
from dbdaora.backends.redis.wire.transport import Operation
from dbdaora.exceptions import BackendError, BadDataError, failure_text

Calls = Sequence[tuple[list[bytes], list[Any]]]
"""Each run of a script: its KEYS, then its ARGV."""


class Closes(Protocol):
    """What ``PerLoop`` keeps per event loop: a transport, or anything it must close."""

    async def close(self) -> None: ...


T = TypeVar("T", bound=Closes)


class Lua(Protocol):
    """A script as a link sends it: its source, and the SHA1 a server knows it by."""

    @property
    def source(self) -> str: ...

    @property
    def sha(self) -> str: ...


class Link(Protocol):
    """A store's connection side. Every failure to reach the server raises ``BackendError``;
    an error reply about a key's data, ``BadDataError``."""

    url: str
    """The server's URL, its password masked."""

    def run(self, operation: Operation) -> Coroutine[Any, Any, Any]:
        """One operation's result."""
        ...

    def run_all(self, operations: list[Operation]) -> Coroutine[Any, Any, list[Any]]:
        """Several operations' results, in one round trip."""
        ...

    def run_script(
        self, script: Lua, keys: list[bytes], args: list[Any]
    ) -> Coroutine[Any, Any, Any]:
        """One run of ``script``'s reply."""
        ...

    def run_scripts(self, script: Lua, calls: Calls) -> Coroutine[Any, Any, list[Any]]:
        """The replies of several runs of ``script``, in one round trip."""
        ...

    def close(self) -> Coroutine[Any, Any, None]: ...


class PerLoop(Generic[T]):
    """The transport of the running event loop, opened there on its first use.

    A transport is bound to the loop that opened it; used from a new loop
    (``asyncio.run`` called again), a new one is opened there, and the old one is
    closed when its loop shuts down, so nothing outlives the loop it was made on.
    """

    __slots__ = ("_closer", "_current", "_loop", "_open")

    def __init__(self, open_transport: Callable[[], T]) -> None:
        self._open = open_transport
        self._current: T | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closer: AsyncGenerator[None, None] | None = None

    def current(self) -> T:
        loop = asyncio.get_running_loop()
        if self._current is None or self._loop is not loop:
            self._current = self._open()
            self._loop = loop
            self._closer = close_with_loop(self._current.close)
        return self._current

    async def close(self) -> None:
        """Close the running loop's transport; one of another loop closes with its loop."""
        closer, self._closer, self._current = self._closer, None, None
        if closer is not None and self._loop is asyncio.get_running_loop():
            await closer.aclose()


DATA_ERRORS = ("WRONGTYPE",)
"""Error codes of replies about a key's data, not the server's state.

A script's error keeps the code of the command that failed in it (Redis 7:
``WRONGTYPE ... script: ...``; before, ``ERR Error running script ...
WRONGTYPE ...``), so a code is looked for anywhere in the reply. Every other
error reply (LOADING, BUSY, READONLY, OOM, CLUSTERDOWN...) is the server's.
"""


def failed(url: str, exc: BaseException) -> BackendError | BadDataError:
    """What a driver's or socket's ``exc`` becomes: ``BadDataError`` for an error
    reply about a key's data, else ``BackendError``."""
    if isinstance(exc, ResponseError):
        text = str(exc)
        if any(code in text for code in DATA_ERRORS):
            return BadDataError(f"Redis refused the data: {text}", url=url)
    return BackendError(f"Redis failed: {failure_text(exc)}", url=url)
