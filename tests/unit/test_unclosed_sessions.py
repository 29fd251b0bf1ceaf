"""Sessions a program never closes: it exits quietly, with no traceback from a driver.

The issue reported SQLAlchemy ``GeneratorExit`` tracebacks at exit. Each run here
leaves sessions open on a private redis-server and the fallback, one of them with
fallback reads still in flight when ``asyncio.run`` returns, and reads stderr.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = """
import asyncio, sys
import dbdaora
from dbdaora import Session
from tests.support.models import Person

async def main() -> None:
    memory, fallback = sys.argv[1], sys.argv[2]
    session = Session(memory=memory, fallback=fallback)
    await session.fallback.create_all([Person._meta])
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"))
    print((await people.get("a")).name)
    dbdaora.configure(memory=memory, fallback=fallback)
    print((await Person.objects.get("a")).name)  # the default session, never closed
    busy = Session(memory=memory, fallback=fallback)

    async def spin() -> None:
        while True:
            await busy.fallback.get_many(Person._meta, ["a"])

    for _ in range(3):
        asyncio.get_running_loop().create_task(spin())
    await asyncio.sleep(0.05)

asyncio.run(main())
"""


# What asyncpg itself prints, now and then, when asyncio.run cancels a task in the middle
# of its query (SQLAlchemy issues 8145 and 12077, asyncpg issue 1156): the terminated
# connection's waiter, and SQLAlchemy's garbage-collection warning for it. Both come
# from the driver under cancellation, not from dbdaora; every other line still fails.
ASYNCPG_CANCELLED = [
    r"Future exception was never retrieved\n"
    r"future: <Future finished exception=ConnectionError\('unexpected connection_lost\(\) "
    r"call'\)>\nConnectionError: unexpected connection_lost\(\) call\n?",
    r"(\S+: SAWarning: )?The garbage collector is trying to clean up non-checked-in "
    r"connection <AdaptedConnection <asyncpg\.connection\.Connection object at 0x[0-9a-f]+>>"
    r", which will be terminated\.[^\n]*\n(  return info\.func[^\n]*\n)?",
]


@pytest.fixture(params=["sqlite", "postgres"])
def fallback_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'unclosed.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_a_program_that_never_closes_its_sessions_exits_quietly(
    redis_proc: RedisServer, fallback_url: str
) -> None:
    """Exit status 0, its output, and nothing on stderr (on PostgreSQL, but asyncpg's own
    notices of a query cancelled at exit)."""
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM, redis_proc.url, fallback_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["A", "A"]
    stderr = result.stderr
    if fallback_url.startswith("postgresql"):
        for notice in ASYNCPG_CANCELLED:
            stderr = re.sub(notice, "", stderr)
    assert stderr == ""
