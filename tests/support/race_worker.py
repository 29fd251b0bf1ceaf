"""A writer process for the racing-writer tests (``tests/backends/redis/test_racing_processes.py``).

Started with multiprocessing's spawn, so it shares nothing with the test but the
servers, the fallback's file or database and a barrier. Each round it waits at the
barrier with the other writer and the test, writes every key (the other writer
writes the same keys in the same order at the same time), and waits at the
barrier again when all have returned; the test then compares Redis with the
fallback. Even rounds add against add (different values, but for a flag; writer 1
adds in batches); in odd rounds writer 1 deletes (a hash, a flag) or removes the
member (a sorted set) while writer 0 adds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from dbdaora import Session
from tests.support.models import Liked, Person, Ranking


class Plan(NamedTuple):
    """A race's size: ``keys`` written each round by each writer, in ``lanes`` lanes at
    once (each lane's keys one after another), for ``rounds`` rounds."""

    kind: str  # "hash", "zset" or "flag"
    keys: int
    rounds: int
    lanes: int


BATCH = 3
"""Keys of one ``add`` call of writer 1 (a batch: one claim, one fallback write)."""


def names(plan: Plan) -> list[str]:
    return [f"race{i}" for i in range(plan.keys)]


def value(writer: int, round_: int) -> int:
    """What ``writer`` writes in ``round_``: a person's name (as text) or a score."""
    return writer * 1000 + round_


async def _write(session: Session, kind: str, writer: int, round_: int, batch: list[str]) -> None:
    """One call's writes: an add of the whole batch, or a delete (removal) of each key."""
    deletes = writer == 1 and round_ % 2 == 1
    people, boards = Person.objects.using(session), Ranking.objects.using(session)
    flags = Liked.objects.using(session)
    if deletes:
        for name in batch:
            if kind == "flag":
                await flags.delete(name)
            else:
                await (people.delete(name) if kind == "hash" else boards.remove(name, "p"))
    elif kind == "flag":
        await flags.add(*(Liked(id=name) for name in batch))
    elif kind == "hash":
        await people.add(*(Person(id=name, name=str(value(writer, round_))) for name in batch))
    else:
        await boards.add(
            *(Ranking(board=name, player="p", points=value(writer, round_)) for name in batch)
        )


async def _race(writer: int, memory: str, fallback: str, plan: Plan, barrier: Any) -> None:
    # No memory_timeout: on a loaded machine a slow call would turn a write into a
    # repair record (Redis left as it was until a repair), and this is about races.
    session = Session(memory=memory, fallback=fallback, cache=None, memory_timeout=None)
    keys = names(plan)
    # Writer 1 adds in batches of BATCH keys (one add call each), writer 0 key by key.
    size = BATCH if writer == 1 else 1

    async def lane(round_: int, start: int) -> None:
        mine = keys[start :: plan.lanes]
        for i in range(0, len(mine), size):
            await _write(session, plan.kind, writer, round_, mine[i : i + size])

    for round_ in range(plan.rounds):
        await asyncio.to_thread(barrier.wait)
        await asyncio.gather(*(lane(round_, start) for start in range(plan.lanes)))
        await asyncio.to_thread(barrier.wait)
    await session.close()


def run(writer: int, memory: str, fallback: str, plan: Plan, barrier: Any) -> None:
    """The process's target: the plan's rounds of writes, in step with ``barrier``."""
    asyncio.run(_race(writer, memory, fallback, Plan(*plan), barrier))


def disagreements(
    plan: Plan, redis_rows: Sequence[tuple[Any, bytes | None]], fallback_rows: Sequence[Any]
) -> list[str]:
    """Where Redis holds another value than the fallback, or a marker other than a
    not-found one for a record the fallback lacks, one line each. Redis holding no
    copy agrees with anything."""
    found = []
    for name, (copy, marker), record in zip(names(plan), redis_rows, fallback_rows, strict=True):
        if plan.kind == "flag":  # a flag's copy is 1 or 0; 0 agrees with no record
            durable = record is not None
            cached = None if copy is None else copy == b"1"
        elif plan.kind == "hash":
            durable = None if record is None else record.name.encode()
            cached = copy.get(b"name") if copy else None
        else:
            durable = None if record is None else [(b"p", float(s)) for _, s in record]
            cached = copy or None
        if cached is not None and cached != durable:
            found.append(f"{name}: Redis {cached!r}, fallback {durable!r}")
        elif marker is not None and (marker != b"1" or durable not in (None, False)):
            found.append(f"{name}: marker {marker!r}, fallback {durable!r}")
    return found
