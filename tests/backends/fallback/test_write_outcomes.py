"""Failed SQL writes: a refused one keeps the Redis copy, an unanswered COMMIT evicts it.

Real servers throughout: a private PostgreSQL stopped, a SQLite file locked by
another process, and a proxy in front of PostgreSQL that lets a COMMIT through
(or not) and never returns its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from dbdaora import BackendError, OutcomeUnknownError, Session
from dbdaora.backends.fallback.sql.store import SQLFallback
from dbdaora.backends.redis.single import RedisStore
from tests.support.models import Person
from tests.support.servers import PostgresServer, RedisServer, postgres_server

OLD, NEW = Person(id="p1", name="Old", age=1), Person(id="p1", name="New", age=2)


def _held(raw_redis: redis.Redis) -> dict[bytes, bytes]:
    return raw_redis.hgetall(b"person:p1")  # type: ignore[return-value]


@pytest.fixture
def lone_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL of this test alone, which the test stops."""
    with postgres_server() as server:
        yield server


async def test_postgres_down_keeps_the_redis_copy(
    lone_postgres: PostgresServer, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """PostgreSQL stopped: add and delete raise BackendError, the Redis copy stays readable."""
    async with Session(
        memory=RedisStore(redis_proc.url), fallback=lone_postgres.url, breaker=None
    ) as session:
        people = Person.objects.using(session)
        await people.add(OLD)
        before = _held(raw_redis)
        assert before[b"name"] == b"Old"
        await asyncio.to_thread(lone_postgres.stop)

        for write in (people.add(NEW), people.delete("p1")):
            with pytest.raises(BackendError) as error:
                await write
            assert not isinstance(error.value, OutcomeUnknownError)
            assert error.value.unknown == frozenset() and error.value.written == frozenset()
            assert error.value.__cause__ is not None
        assert _held(raw_redis) == before
        assert await people.get("p1") == OLD
        assert session.stats()["models"]["Person"]["redis_hits"] == 1


async def test_sqlite_locked_by_another_process_keeps_the_redis_copy(
    tmp_path: Path, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """SQLite write-locked by another process: add raises after the lock timeout, Redis intact."""
    path = tmp_path / "locked.db"
    fallback = SQLFallback(f"sqlite+aiosqlite:///{path}", connect_timeout=0.5)
    async with Session(memory=RedisStore(redis_proc.url), fallback=fallback) as session:
        people = Person.objects.using(session)
        await people.add(OLD)
        locker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
            "db.execute('BEGIN IMMEDIATE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert locker.stdout is not None
            assert await locker.stdout.readline() == b"locked\n"
            started = time.monotonic()
            with pytest.raises(BackendError, match="database is locked") as error:
                await people.add(NEW)
            assert time.monotonic() - started >= 0.5
            assert not isinstance(error.value, OutcomeUnknownError)
            assert _held(raw_redis)[b"name"] == b"Old"
            assert await people.get("p1") == OLD
        finally:
            locker.kill()
            await locker.wait()
        assert await fallback.get_many(Person._meta, ["p1"]) == [OLD]


class CommitTrap:
    """A TCP proxy in front of PostgreSQL that, once armed, traps the next COMMIT.

    ``deliver``: forward the COMMIT to the server (which commits) and drop every
    answer after it; otherwise cut the connection without forwarding it (nothing
    commits). Either way the client never learns the outcome.
    """

    def __init__(self, port: int, *, deliver: bool) -> None:
        self.port = port
        self.deliver = deliver
        self.armed = False
        self.sprung = asyncio.Event()
        self.server: asyncio.Server | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[int]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self.server.sockets[0].getsockname()[1]
        finally:
            self.server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.server.wait_closed()

    async def _serve(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.port)
        muted = asyncio.Event()

        async def upstream() -> None:
            while data := await client_in.read(65536):
                if self.armed and b"COMMIT" in data:
                    self.armed = False
                    self.sprung.set()
                    if not self.deliver:
                        client_out.close()
                        server_out.close()
                        return
                    muted.set()
                server_out.write(data)
                await server_out.drain()

        async def downstream() -> None:
            while data := await server_in.read(65536):
                if not muted.is_set():
                    client_out.write(data)
                    await client_out.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        handler = asyncio.current_task()
        assert handler is not None
        self._tasks.add(handler)
        self._tasks.update(tasks)
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in (client_out, server_out):
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


@pytest.mark.parametrize("deliver", [True, False], ids=["committed", "not-committed"])
async def test_unanswered_commit_evicts_the_redis_copy(
    deliver: bool,
    postgres_proc: PostgresServer,
    postgres_url: str,
    redis_proc: RedisServer,
    raw_redis: redis.Redis,
) -> None:
    """A COMMIT whose answer never comes: OutcomeUnknownError, the Redis copy is deleted,
    and the next read returns what PostgreSQL really holds."""
    trap = CommitTrap(postgres_proc.port, deliver=deliver)
    async with trap.running() as port:
        url = postgres_url.replace(f":{postgres_proc.port}/", f":{port}/")
        fallback = SQLFallback(url, connect_args={"command_timeout": 1})
        async with Session(memory=RedisStore(redis_proc.url), fallback=fallback) as session:
            people = Person.objects.using(session)
            await people.add(OLD, Person(id="p2", name="Other"))
            trap.armed = True
            with pytest.raises(OutcomeUnknownError) as error:
                await people.add(NEW)
            assert trap.sprung.is_set()
            assert error.value.unknown == {"p1"} and error.value.written == frozenset()
            assert isinstance(error.value, BackendError) and error.value.__cause__ is not None
            assert not raw_redis.exists(b"person:p1")
            assert raw_redis.exists(b"person:p2")
            truth = SQLFallback(postgres_url)
            try:
                (held,) = await truth.get_many(Person._meta, ["p1"])
            finally:
                await truth.close()
            assert held == (NEW if deliver else OLD)
            assert await people.get("p1") == held
