"""A writer process for the repair tests: ``python -m tests.support.repair_writer REDIS FALLBACK``.

Redis is frozen when it runs. Its first Redis call times out and opens its
breaker, so its write of ``person:a`` never reaches Redis; the write is
acknowledged all the same (the fallback has it, and a repair record), the
process prints ``acknowledged`` and dies by SIGKILL, before Redis comes back.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from dbdaora import Session
from tests.support.models import Person


async def main(memory: str, fallback: str) -> None:
    session = Session(
        memory=memory,
        fallback=fallback,
        memory_timeout=0.2,
        breaker={"fail_max": 1, "reset_timeout": 60},
    )
    people = Person.objects.using(session)
    assert not await people.exists("elsewhere")  # times out, opens the breaker
    await people.add(Person(id="a", name="new"))
    print("acknowledged", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
