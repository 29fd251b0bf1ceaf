"""Redis client tracking on the multiplexed connection: who hears of changed keys.

A link keeps one ``Tracking``: the listeners (a session's cache, ``Invalidations``)
of every connection it opens. A connection tracks once a listener exists: it
switches to RESP3 (``HELLO 3``) and turns ``CLIENT TRACKING ON OPTIN``, so Redis
remembers only the keys of reads sent right after ``CLIENT CACHING YES`` (the
reads a cache keeps), and from then on pushes ``invalidate`` with the keys that
changed, whoever changed them, and with none (null) after FLUSHALL/FLUSHDB or
when its tracking table overflows (``tracking-table-max-keys``).

The pushes arrive on the connection, in order with the replies: an invalidation
Redis sent before the reply of a read is handed to the listeners before that
reply reaches its caller. A connection that is lost or replaced, or one that
read untracked before it started tracking, cannot say what changed meanwhile:
the listeners flush everything. Without NOLOOP, a write on the connection itself
invalidates too: Redis stops tracking a key once it sent its invalidation, so a
writer must not keep what it wrote.

It only counts and hands on keys; what a key means to a cache is the listener's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


def _pack(*args: bytes) -> bytes:
    """A command in RESP, as hiredis packs it (written out so that the in-process store,
    which imports ``Invalidations``, runs without the ``redis`` extra)."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


TRACKING_ON = _pack(b"HELLO", b"3") + _pack(b"CLIENT", b"TRACKING", b"ON", b"OPTIN")
"""What a connection sends before it tracks: two commands, two replies."""

BROADCAST_ON = _pack(b"HELLO", b"3") + _pack(b"CLIENT", b"TRACKING", b"ON", b"BCAST")
"""The same for a connection that hears of every key its server changes (BCAST): a
cluster master's watcher, whose reads go on other connections."""

CACHING_YES = _pack(b"CLIENT", b"CACHING", b"YES")
"""Sent right before a read whose keys Redis must track (OPTIN): one reply."""

PING = _pack(b"PING")
"""The heartbeat of an idle tracking connection, so a silent one is found dead."""


class Invalidations(Protocol):
    """What a tracking connection tells a listener."""

    def invalidate(self, keys: Sequence[bytes]) -> None:
        """These keys changed (or expired, or were evicted) in Redis."""
        ...

    def flush(self) -> None:
        """Anything may have changed: FLUSHALL, a lost connection."""
        ...


class Tracking:
    """The listeners of a link's connections, and the pushes handed to them.

    ``turn_on``: what a connection sends to start tracking (``TRACKING_ON`` or
    ``BROADCAST_ON``).
    """

    __slots__ = ("listeners", "turn_on")

    def __init__(self, turn_on: bytes = TRACKING_ON) -> None:
        self.listeners: list[Invalidations] = []
        self.turn_on = turn_on

    def add(self, listener: Invalidations) -> None:
        self.listeners.append(listener)

    def remove(self, listener: Invalidations) -> None:
        if listener in self.listeners:
            self.listeners.remove(listener)

    def pushed(self, frame: Sequence[Any]) -> None:
        """A push frame: ``invalidate`` goes to the listeners, any other is ignored."""
        if len(frame) < 2 or frame[0] != b"invalidate":
            return
        keys = frame[1]
        for listener in self.listeners:
            if keys is None:
                listener.flush()
            else:
                listener.invalidate(keys)

    def lost(self) -> None:
        """A connection was lost (or read untracked before): every listener flushes."""
        for listener in self.listeners:
            listener.flush()
