"""A writer in another OS process, for the tracked-cache tests and benchmark.

``python -m tests.support.tracking_writer REDIS FALLBACK COUNT PAUSE`` adds
``Person("a")`` COUNT times through a fresh session, named ``v1`` .. ``vCOUNT``,
PAUSE seconds apart, and prints ``<name> <time.time() once add returned>`` per write.
``follow_a_writer`` runs it beside a reader in this process.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from dbdaora import Session
from tests.support.models import Person

ROOT = Path(__file__).resolve().parents[2]


async def follow_a_writer(
    people: Any, memory: str, fallback: str, count: int, pause: float
) -> tuple[list[tuple[float, int]], list[tuple[int, float]]]:
    """This module in another OS process writing ``Person("a")`` ``count`` times while
    ``people`` reads it here; the (time, version) of each read, and the (version, time
    its add returned) of each write."""
    writer = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.support.tracking_writer"),
        *(memory, fallback, str(count), str(pause)),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    finished = asyncio.ensure_future(writer.communicate())
    seen: list[tuple[float, int]] = []
    while not finished.done():
        seen.append((time.time(), int((await people.get("a")).name[1:])))
        await asyncio.sleep(0.0005)
    out, err = finished.result()
    assert writer.returncode == 0, err.decode()
    written = [(int(name[1:]), float(at)) for name, at in map(str.split, out.decode().splitlines())]
    return seen, written


async def main(memory: str, fallback: str, count: int, pause: float) -> None:
    async with Session(memory=memory, fallback=fallback, expire_time=3600) as session:
        people = Person.objects.using(session)
        for i in range(1, count + 1):
            await asyncio.sleep(pause)
            await people.add(Person(id="a", name=f"v{i}"))
            print(f"v{i} {time.time()!r}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
