"""A writer in another OS process, for the tracked-cache tests and benchmark.

``python -m tests.support.tracking_writer REDIS FALLBACK COUNT PAUSE`` adds
``Person("a")`` COUNT times through a fresh session, named ``v1`` .. ``vCOUNT``,
PAUSE seconds apart, and prints ``<name> <time.time() once add returned>`` per write.
"""

from __future__ import annotations

import asyncio
import sys
import time

from dbdaora import Session
from tests.support.models import Person


async def main(memory: str, fallback: str, count: int, pause: float) -> None:
    async with Session(memory=memory, fallback=fallback, expire_time=3600) as session:
        people = Person.objects.using(session)
        for i in range(1, count + 1):
            await asyncio.sleep(pause)
            await people.add(Person(id="a", name=f"v{i}"))
            print(f"v{i} {time.time()!r}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
