"""A writer process for the racing-writer tests (``tests/backends/redis/test_racing_processes.py``).

Started with multiprocessing's spawn, so it shares nothing with the test but the
servers, the fallback's file or database and a barrier. Each round it waits at the
barrier with the other writer and the test, writes every key (the other writer
writes the same keys in the same order at the same time), and waits at the barrier again when all
have returned; the test then compares Redis with the fallback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from dbdaora import Session
from tests.support.models import Person, Ranking

KEYS = 100
"""Keys both writers write each round."""

ROUNDS = 10
"""Rounds a race runs: even ones add against add, odd ones add against delete."""

LANES = [range(start, KEYS, 4) for start in range(4)]
"""Each writer writes the keys in four lanes at once, each lane in order."""


def names() -> list[str]:
    return [f"race{i}" for i in range(KEYS)]


def value(writer: int, round_: int) -> int:
    """What writer ``writer`` writes in ``round_``: a person's name (as text) or a score."""
    return writer * 1000 + round_


async def _write(session: Session, kind: str, writer: int, round_: int, name: str) -> None:
    deletes = writer == 1 and round_ % 2 == 1
    if kind == "hash":
        people = Person.objects.using(session)
        if deletes:
            await people.delete(name)
        else:
            await people.add(Person(id=name, name=str(value(writer, round_))))
        return
    boards = Ranking.objects.using(session)
    if deletes:
        await boards.remove(name, "p")
    else:
        await boards.add(Ranking(board=name, player="p", points=value(writer, round_)))


async def _lane(session: Session, kind: str, writer: int, round_: int, lane: range) -> None:
    """One lane's keys, one write at a time: the other writer runs the same lane in the
    same order, so each key's two writes are in flight together."""
    for i in lane:
        await _write(session, kind, writer, round_, names()[i])


async def _race(writer: int, memory: str, fallback: str, kind: str, barrier: Any) -> None:
    session = Session(memory=memory, fallback=fallback, cache=None)
    for round_ in range(ROUNDS):
        await asyncio.to_thread(barrier.wait)
        await asyncio.gather(*(_lane(session, kind, writer, round_, lane) for lane in LANES))
        await asyncio.to_thread(barrier.wait)
    await session.close()


def run(writer: int, memory: str, fallback: str, kind: str, barrier: Any) -> None:
    """The process's target: ``ROUNDS`` rounds of writes of every key, in step with ``barrier``."""
    asyncio.run(_race(writer, memory, fallback, kind, barrier))


def disagreements(
    kind: str, redis_rows: Sequence[tuple[Any, bytes | None]], fallback_rows: Sequence[Any]
) -> list[str]:
    """Where Redis holds another value than the fallback (or says "not found" for a record
    the fallback holds), one line each; Redis holding no copy agrees with anything."""
    found = []
    for name, (copy, marker), record in zip(names(), redis_rows, fallback_rows, strict=True):
        if kind == "hash":
            durable = None if record is None else record.name.encode()
            cached = copy.get(b"name") if copy else None
        else:
            durable = None if record is None else [(b"p", float(s)) for _, s in record]
            cached = copy or None
        if cached is not None and cached != durable:
            found.append(f"{name}: Redis {cached!r}, fallback {durable!r}")
        elif marker is not None and (marker != b"1" or durable is not None):
            found.append(f"{name}: marker {marker!r}, fallback {durable!r}")
    return found
