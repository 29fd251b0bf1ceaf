"""Readers for the tests whose claim is about what a session or another process reads.

``python -m tests.support.reader REDIS FALLBACK ID`` prints the name of ``Person(ID)``
read through a fresh session; ``until_new`` watches a session read a new value.
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


async def read_in_another_process(redis_url: str, fallback_url: str, id_: str = "a") -> str:
    """The name another OS process reads for ``Person(id_)``."""
    reader = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.support.reader", redis_url, fallback_url, id_),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(reader.communicate(), 30)
    assert reader.returncode == 0, err.decode()
    return out.decode().strip()


async def until_new(people: Any, since: float, bound: float, watch: float = 0.5) -> float:
    """Read ``Person("a")`` for ``bound + watch`` seconds from ``since``; the seconds until
    the first "new", asserting that it came within ``bound`` and nothing older after it."""
    seen = None
    while time.monotonic() - since < bound + watch:
        name = (await people.get("a")).name
        if name == "new" and seen is None:
            seen = time.monotonic() - since
        assert name == "new" or seen is None, "an older copy served after the new one"
        await asyncio.sleep(0.01)
    assert seen is not None and seen <= bound, f"the new value first read after {seen} s"
    return seen


async def main(memory: str, fallback: str, id_: str) -> None:
    async with Session(memory=memory, fallback=fallback, expire_time=3600) as session:
        print((await Person.objects.using(session).get(id_)).name, flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
