"""What repair costs a healthy system (issue 14), on a real redis-server, as ratios.

Run: .venv/bin/python -m benchmarks.repair_cost   [--rounds 7] [--scale 1.0]

Three sides on one private redis-server, the same keys and data, in one run:

``ORM, repair on``
    ``Person.objects.using(Session(memory=url, fallback=DictFallback(), cache=None))``
    with the default ``repair_interval`` (2 s): every Redis call checks whether a
    repair is due, and one runs beside the calls every interval.
``ORM, repair off``
    The same with ``repair_interval=1e9``: after the first call's repair, none is
    ever due again (the per-call time check stays, it is one comparison).
``hand``
    Hand-written redis-py asyncio code: ``benchmarks/speed.py``'s ``get`` and
    ``add`` rows (``HGETALL`` and a HandPerson; ``MULTI; HSET; EXPIRE; EXEC``).

Each round runs ``get`` then ``add``; within a row the three sides take turns
over five slices of the batch (on, off, hand, on, off, hand, ...), so load from
elsewhere hits all three; after an untimed warm-up come ``--rounds`` rounds. A
round's figure is the median of its calls; the table shows the median over the
rounds and the ratios on / hand, off / hand and on / off. The fallback is the
dict, as in ``benchmarks.speed``, so the repair's fallback read is cheap here;
``benchmarks.repair`` times one such read on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import statistics
from collections.abc import Awaitable, Callable

from benchmarks.speed import SLICES, Bench, orm_errors
from dbdaora import Session
from dbdaora.backends import DictFallback
from tests.support.servers import redis_server

ROUNDS = 7
OFF = 1e9
SIDES = ("on", "off", "hand")


async def run(url: str, rounds: int, scale: float) -> dict[str, dict[str, list[float]]]:
    """Per row and side, the median call time of each round."""
    fallback = DictFallback()
    bench = Bench(url, fallback, scale)
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        await bench.fill()
        counts = {"get": max(5, round(1000 * scale)), "add": max(5, round(500 * scale))}
        async with contextlib.AsyncExitStack() as stack:
            on = await stack.enter_async_context(Session(memory=url, fallback=fallback, cache=None))
            off = await stack.enter_async_context(
                Session(memory=url, fallback=fallback, cache=None, repair_interval=OFF)
            )
            rows: dict[str, dict[str, Callable[[int], Awaitable[list[float]]]]] = {
                "get": {
                    "on": lambda n: bench.orm_get(on, n),
                    "off": lambda n: bench.orm_get(off, n),
                    "hand": bench.hand_get,
                },
                "add": {
                    "on": lambda n: bench.orm_add(on, n),
                    "off": lambda n: bench.orm_add(off, n),
                    "hand": bench.hand_add,
                },
            }
            for name, sides in rows.items():  # warm-up
                for side in SIDES:
                    await sides[side](max(1, counts[name] // SLICES))
                figures[name] = {side: [] for side in SIDES}
            for _ in range(rounds):
                for name, sides in rows.items():
                    part = max(1, counts[name] // SLICES)
                    times: dict[str, list[float]] = {side: [] for side in SIDES}
                    gc.collect()
                    for _ in range(SLICES):
                        for side in SIDES:
                            times[side] += await sides[side](part)
                    for side in SIDES:
                        figures[name][side].append(statistics.median(times[side]))
            errors = orm_errors(on) + orm_errors(off)
            assert errors == 0, f"the ORM sessions counted {errors} Redis errors"
    finally:
        await bench.close()
    return figures


def report(figures: dict[str, dict[str, list[float]]]) -> None:
    line = "{:<6}{:>14}{:>14}{:>14}{:>10}{:>10}{:>10}"
    print(line.format("op", "repair on", "repair off", "hand", "on/hand", "off/hand", "on/off"))
    for name, sides in figures.items():
        on, off, hand = (statistics.median(sides[side]) for side in SIDES)
        print(
            line.format(
                name,
                f"{on * 1e6:.1f} us",
                f"{off * 1e6:.1f} us",
                f"{hand * 1e6:.1f} us",
                f"{on / hand:.3f}",
                f"{off / hand:.3f}",
                f"{on / off:.3f}",
            )
        )


def main(rounds: int = ROUNDS, scale: float = 1.0) -> dict[str, dict[str, list[float]]]:
    with redis_server() as server:
        figures = asyncio.run(run(server.url, rounds, scale))
    print(f"dbdaora repair cost: {rounds} round(s), scale {scale:g}")
    report(figures)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return figures


if __name__ == "__main__":
    logging.getLogger("dbdaora").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--scale", type=float, default=1.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.scale)
