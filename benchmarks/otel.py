"""What tracing costs a get (issue 18), on a real redis-server, as ratios.

Run: .venv/bin/python -m benchmarks.otel   [--rounds 7] [--scale 1.0]

Run with opentelemetry-api installed (the ``otel`` extra) and no global tracer
provider set. Four sides on one private redis-server, the same keys and data,
in one run:

``bare``
    ``inspect.unwrap(HashManager.get)(manager, id)``: the operation without its
    tracing wrapper, as it ran before there was one (``benchmarks.speed``'s
    ``get`` row).
``off``
    ``Person.objects.using(session).get(id)`` with no provider: the wrapper asks
    ``tracing.current()``, finds none, and hands back the operation's coroutine.
``on``
    The same get with ``dbdaora.set_tracer_provider(provider)``: an SDK
    ``TracerProvider`` with a ``BatchSpanProcessor`` whose exporter counts the
    spans and drops them, so the figure is what making and queueing a span
    costs, not an exporter's network.
``hand``
    ``HGETALL person:<id>`` and a HandPerson, by redis-py asyncio
    (``benchmarks.speed``'s hand-written ``get``).

The ORM sides share one session (no cache, the default breakers and
``memory_timeout``): they differ only in the wrapper. Each round runs the
``get`` row, then ``get_many 100``; within a row the sides take turns over five
slices of the batch (bare, off, on, hand, bare, ...), so load from elsewhere
hits them all; after an untimed warm-up come ``--rounds`` rounds. A round's
figure is the median of its calls; the table shows the median over the rounds,
each ORM side over hand, and off / bare: the cost of tracing being off.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import logging
import os
import statistics
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import dbdaora
from benchmarks.speed import SLICES, STORED, Bench, Person, orm_errors, timings
from dbdaora import Session
from dbdaora.backends import DictFallback
from dbdaora.managers import HashManager
from dbdaora.session import tracing
from tests.support.servers import redis_server

ROUNDS = 7
SIDES = ("bare", "off", "on", "hand")


class Counted(SpanExporter):
    """Counts the spans it is handed, and drops them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


async def run(url: str, rounds: int, scale: float) -> tuple[dict[str, dict[str, list[float]]], int]:
    """Per row and side, the median call time of each round; the spans exported."""
    assert tracing.current() is None, "run with no global tracer provider set"
    exporter = Counted()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    bench = Bench(url, DictFallback(), scale)
    figures: dict[str, dict[str, list[float]]] = {}
    try:
        await bench.fill()
        async with Session(memory=url, fallback=bench.fallback, cache=None) as session:
            people: Any = Person.objects.using(session)
            get, bare_get = people.get, inspect.unwrap(HashManager.get)
            get_many, bare_many = people.get_many, inspect.unwrap(HashManager.get_many)
            ids, batch = bench.ids, bench._batch
            rows: dict[str, dict[str, Callable[[int], Awaitable[list[float]]]]] = {
                "get": {
                    "bare": lambda n: timings(n, lambda i: bare_get(people, ids[i % STORED])),
                    "off": lambda n: timings(n, lambda i: get(ids[i % STORED])),
                    "on": lambda n: timings(n, lambda i: get(ids[i % STORED])),
                    "hand": bench.hand_get,
                },
                "get_many 100": {
                    "bare": lambda n: timings(n, lambda i: bare_many(people, batch(i))),
                    "off": lambda n: timings(n, lambda i: get_many(batch(i))),
                    "on": lambda n: timings(n, lambda i: get_many(batch(i))),
                    "hand": bench.hand_get_many,
                },
            }
            counts = {
                "get": max(5, round(1000 * scale)),
                "get_many 100": max(5, round(150 * scale)),
            }

            async def side(name: str, which: str, count: int) -> list[float]:
                dbdaora.set_tracer_provider(provider if which == "on" else None)
                try:
                    return await rows[name][which](count)
                finally:
                    dbdaora.set_tracer_provider(None)

            for name in rows:  # warm-up
                for which in SIDES:
                    await side(name, which, max(1, counts[name] // SLICES))
                figures[name] = {which: [] for which in SIDES}
            for _ in range(rounds):
                for name in rows:
                    part = max(1, counts[name] // SLICES)
                    times: dict[str, list[float]] = {which: [] for which in SIDES}
                    gc.collect()
                    for _ in range(SLICES):
                        for which in SIDES:
                            times[which] += await side(name, which, part)
                    for which in SIDES:
                        figures[name][which].append(statistics.median(times[which]))
            errors = orm_errors(session)
            assert errors == 0, f"the ORM session counted {errors} Redis errors"
    finally:
        await bench.close()
        provider.shutdown()  # flushes the queue into the exporter
    return figures, exporter.spans


def report(figures: dict[str, dict[str, list[float]]]) -> None:
    line = "{:<14}{:>12}{:>12}{:>12}{:>12}{:>10}{:>10}{:>10}{:>10}"
    print(
        line.format(
            "op", "bare", "off", "on", "hand", "bare/hand", "off/hand", "on/hand", "off/bare"
        )
    )
    for name, sides in figures.items():
        bare, off, on, hand = (statistics.median(sides[which]) for which in SIDES)
        print(
            line.format(
                name,
                f"{bare * 1e6:.1f} us",
                f"{off * 1e6:.1f} us",
                f"{on * 1e6:.1f} us",
                f"{hand * 1e6:.1f} us",
                f"{bare / hand:.3f}",
                f"{off / hand:.3f}",
                f"{on / hand:.3f}",
                f"{off / bare:.3f}",
            )
        )


def main(rounds: int = ROUNDS, scale: float = 1.0) -> dict[str, dict[str, list[float]]]:
    with redis_server() as server:
        figures, spans = asyncio.run(run(server.url, rounds, scale))
    print(f"dbdaora tracing cost: {rounds} round(s), scale {scale:g}")
    report(figures)
    print(f"{spans} spans exported (from the on side only)")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return figures


if __name__ == "__main__":
    logging.getLogger("dbdaora").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--scale", type=float, default=1.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.scale)
