"""Restarts that lost writes: a Redis that came back with copies older than the fallback.

A Redis restarted from an RDB snapshot or an AOF (``appendfsync everysec``), or
a replica promoted after a failover, can hold copies older than writes it had
acknowledged, with their TTL still running, and no repair record names them.
Every such event gives the server a new ``run_id``. The Redis side keeps, in
``dbdaora:epoch``, the instance under which each model's key prefix was last
swept; the snapshot brings back an older epoch or none, so the prefix is stale.
A prefix with no epoch at all is adopted, its keys kept (they may be dbdaora
0.27's), unless the server started from persisted data (``Epochs.restored``):
then its keys may come from a snapshot older than the first epoch, and it is
swept like the others.

Each session checks where it checks its repair records (``guard``): before its
first Redis call, before the first after one failed, and every
``repair_interval`` beside the calls. It costs one round trip (the ``EPOCHS``
script). On a stale prefix, one session per event (the lock of ``sweep``)
deletes the prefix's keys, markers included, and records the epoch; every
other session waits for the epoch. Until then the sessions' Redis calls raise
``RedisUnavailableError`` (calls in the first ``memory_timeout`` after the
sweep starts wait for it, so that a small sweep goes unnoticed), and the
managers answer from the fallback, filling nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from dbdaora.backends import RedisSide
from dbdaora.lease import lease_token

SWEEP_WAIT = 1.0
"""How long calls wait, from a sweep's start, before answering from the fallback,
where the session has no ``memory_timeout`` (which bounds it otherwise)."""

SWEEP_POLL = 0.05
"""How often a session waiting on another's sweep reads the epochs again."""


class Restarts:
    """A session's sweep after a restart: the task, when it started, the lock's token;
    whether a check found every prefix current once (``checked``)."""

    __slots__ = ("checked", "started", "sweeping", "token")

    def __init__(self) -> None:
        self.checked = False
        self.sweeping: asyncio.Task[None] | None = None
        self.started = 0.0
        self.token = lease_token()


def stale(prefixes: Iterable[bytes], instance: bytes, epochs: dict[bytes, bytes]) -> list[bytes]:
    """The prefixes not swept under the server's current instance."""
    return [prefix for prefix in prefixes if epochs.get(prefix) != instance]


async def sweep_until_current(
    memory: RedisSide,
    prefixes: list[bytes],
    instance: bytes,
    token: bytes,
    *,
    keep: list[bytes],
) -> None:
    """Sweep ``prefixes``, or wait for whoever sweeps them, until each epoch is current.

    Raises:
        BackendError: Redis failed meanwhile; the next check starts again.
    """
    while not await memory.sweep(prefixes, instance, token, keep=keep):
        await asyncio.sleep(SWEEP_POLL)
        found = await memory.epochs()
        instance = found.instance
        prefixes = stale(prefixes, instance, found.swept)
        if not prefixes:
            return
