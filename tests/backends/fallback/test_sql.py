"""The SQL fallback: its tables as plain SQL sees them, large sets, changed models, outages."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import decimal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis

from dbdaora import (
    BackendError,
    ConfigurationError,
    EntityNotFoundError,
    Field,
    Key,
    Model,
    Score,
    Session,
    SortedMember,
    ValidationError,
)
from dbdaora.backends import InProcessRedis
from dbdaora.backends.fallback.sql.store import SQLFallback
from tests.support.models import Address, Color, Follow, Person, Profile, Ranking
from tests.support.raw import RawView
from tests.support.servers import PostgresServer, RedisServer, free_port, postgres_server
from tests.support.stacks import STACKS

SQL_STACKS = [stack for stack in STACKS if stack.values[0][1] in ("sqlite", "postgres")]
on_sql = pytest.mark.parametrize("session", SQL_STACKS, indirect=True)


class Level(Model):
    """A sorted set with int members, where Redis orders ties by the member's text."""

    game: int = Key()
    level: int = SortedMember()
    points: float = Score()

    class Meta:
        max_size = 2


async def plain(url: str, statement: str) -> list[tuple[Any, ...]]:
    """Rows of one statement, through the bare driver (sqlite3, asyncpg)."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as db:
            return db.execute(statement).fetchall()
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return [tuple(row) for row in await connection.fetch(statement)]
    finally:
        await connection.close()


async def columns(url: str, table: str) -> list[tuple[str, str, bool, int]]:
    """(name, declared type, NOT NULL, position in the primary key or 0) of each column."""
    if url.startswith("sqlite"):
        rows = await plain(url, f"PRAGMA table_info({table})")
        return [(name, kind, bool(notnull), pk) for _, name, kind, notnull, _, pk in rows]
    rows = await plain(
        url,
        "SELECT c.column_name, c.data_type, c.is_nullable = 'NO', coalesce(k.ordinal_position, 0) "
        "FROM information_schema.columns c LEFT JOIN information_schema.key_column_usage k "
        "ON k.table_name = c.table_name AND k.column_name = c.column_name "
        f"WHERE c.table_name = '{table}' ORDER BY c.ordinal_position",
    )
    return [(name, kind, notnull, pk) for name, kind, notnull, pk in rows]


def _sqlite(session: Session) -> bool:
    return session.fallback.url.startswith("sqlite")


PROFILE = Profile(
    id=7,
    active=True,
    ratio=0.25,
    born=datetime.date(1990, 5, 17),
    seen=datetime.datetime(
        2026, 1, 2, 5, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    ),
    balance=decimal.Decimal("12345678901234567890.123456789"),
    color=Color.BLUE,
    tags=["a", "ç"],
    extra={"x": 1},
    address=Address("Main", 10),
    nick=None,
    avatar=b"\x00\xff",
)


@on_sql
async def test_hash_table_columns_and_row(session: Session, raw: RawView) -> None:
    """A hash model is one table, a typed column per field, its key the primary key."""
    await Profile.objects.using(session).add(PROFILE)
    url = session.fallback.url
    names = ["id", "active", "ratio", "born", "seen", "balance"]
    names += ["color", "tags", "extra", "address", "nick", "avatar"]
    if _sqlite(session):
        types = ["BIGINT", "BOOLEAN", "DOUBLE", "DATE", "DATETIME", "TEXT"]
        types += ["JSON", "JSON", "JSON", "JSON", "TEXT", "BLOB"]
    else:
        types = ["bigint", "boolean", "double precision", "date", "timestamp with time zone"]
        types += ["numeric", "json", "json", "json", "json", "text", "bytea"]
    not_null = [True] * 9 + [False, False, True]
    assert await columns(url, "profile") == [
        (name, kind, notnull, 1 if name == "id" else 0)
        for name, kind, notnull in zip(names, types, not_null, strict=True)
    ]
    (row,) = await plain(url, "SELECT * FROM profile")
    if _sqlite(session):
        seen: Any = "2026-01-02 03:04:05.000000"
        balance: Any = "12345678901234567890.123456789"
        active: Any = 1
    else:
        seen = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
        balance = decimal.Decimal("12345678901234567890.123456789")
        active = True
    assert row == (
        7,
        active,
        0.25,
        "1990-05-17" if _sqlite(session) else datetime.date(1990, 5, 17),
        seen,
        balance,
        '"blue"',
        '["a","ç"]',
        '{"x":1}',
        '{"street":"Main","number":10}',
        None,
        b"\x00\xff",
    )
    raw.delete(b"profile:7")
    assert await Profile.objects.using(session).get(7) == PROFILE


@on_sql
async def test_composite_key_table(session: Session) -> None:
    """Several Key() fields form the primary key, in declaration order."""
    follows = Follow.objects.using(session)
    await follows.add(
        Follow(user="ann", other="bob", since=1), Follow(user="bob", other="ann", since=2)
    )
    await follows.add(Follow(user="ann", other="bob", since=3))
    url = session.fallback.url
    assert [(name, pk) for name, _, _, pk in await columns(url, "follow")] == [
        ("user", 1),
        ("other", 2),
        ("since", 0),
    ]
    assert sorted(await plain(url, "SELECT * FROM follow")) == [
        ("ann", "bob", 3),
        ("bob", "ann", 2),
    ]
    found = await session.fallback.get_many(Follow._meta, ["bob:ann", "x:y", "ann:bob"])
    assert found == [
        Follow(user="bob", other="ann", since=2),
        None,
        Follow(user="ann", other="bob", since=3),
    ]


@on_sql
async def test_sorted_set_table(session: Session) -> None:
    """A sorted set is one row per member, keyed by (key parts, member), indexed by score."""
    await Ranking.objects.using(session).add(
        Ranking(board="b1", player="ann", points=10), Ranking(board="b1", player="bob", points=7)
    )
    await Ranking.objects.using(session).remove("b1", "bob")
    await Ranking.objects.using(session).add(Ranking(board="b2", player="ann", points=1.5))
    url = session.fallback.url
    assert [(name, notnull, pk) for name, _, notnull, pk in await columns(url, "ranking")] == [
        ("board", True, 1),
        ("player", True, 2),
        ("points", True, 0),
    ]
    assert sorted(await plain(url, "SELECT * FROM ranking")) == [
        ("b1", "ann", 10.0),
        ("b2", "ann", 1.5),
    ]
    if _sqlite(session):
        index = await plain(
            url,
            "SELECT sql FROM sqlite_master WHERE name = 'ranking_score_idx'",
        )
    else:
        index = await plain(
            url, "SELECT indexdef FROM pg_indexes WHERE indexname = 'ranking_score_idx'"
        )
    assert "(board, points)" in index[0][0]


@on_sql
async def test_max_size_breaks_ties_as_redis_does(session: Session, raw: RawView) -> None:
    """Members beyond max_size go lowest first, ties by member text (10 before 9), as ZRANGE."""
    levels = Level.objects.using(session)
    await levels.add(*(Level(game=1, level=n, points=5) for n in (9, 10, 11)))
    assert [x.level for x in await levels.get(1)] == [11, 9]
    raw.delete(b"level:1")
    assert [x.level for x in await levels.get(1)] == [11, 9]
    assert sorted(await plain(session.fallback.url, "SELECT level FROM level")) == [(9,), (11,)]


@on_sql
async def test_large_sorted_set_reads_through(session: Session, raw: RawView) -> None:
    """100,000 members are stored as rows and range-read from the fallback when Redis lost them."""
    rankings = Ranking.objects.using(session)
    for start in range(0, 100_000, 10_000):
        await rankings.add(
            *(
                Ranking(board="big", player=f"p{i:06}", points=i % 1000)
                for i in range(start, start + 10_000)
            )
        )
    assert await plain(session.fallback.url, "SELECT count(*) FROM ranking") == [(100_000,)]

    async def cold(call: Any) -> Any:
        raw.delete(b"ranking:big")
        return await call

    top = await cold(rankings.range("big", 0, 2, reverse=True))
    assert [(r.player, r.points) for r in top] == [
        ("p099999", 999),
        ("p098999", 999),
        ("p097999", 999),
    ]
    window = await cold(rankings.range_by_score("big", min=10, max=10, offset=95, count=10))
    assert [r.player for r in window] == ["p095010", "p096010", "p097010", "p098010", "p099010"]
    assert await cold(rankings.count("big")) == 100_000
    assert len(raw.zrange(b"ranking:big")) == 100_000


@on_sql
async def test_values_no_column_holds_are_refused(session: Session) -> None:
    """Values a column cannot hold exactly are a ValidationError, and nothing is written."""
    profiles = Profile.objects.using(session)
    with pytest.raises(ValidationError, match="give the datetime a timezone") as error:
        await profiles.add(
            PROFILE, Profile(**{**PROFILE.__dict__, "id": 8, "seen": datetime.datetime(2026, 1, 1)})
        )
    assert error.value.field == "seen"
    with pytest.raises(ValidationError, match="64-bit") as error:
        await profiles.add(Profile(**{**PROFILE.__dict__, "id": 2**63}))
    assert error.value.field == "id"
    if _sqlite(session):
        with pytest.raises(ValidationError, match="SQLite stores NaN as NULL") as error:
            await profiles.add(Profile(**{**PROFILE.__dict__, "ratio": float("nan")}))
        assert error.value.field == "ratio"
    else:
        with pytest.raises(ValidationError, match="cannot hold NUL") as error:
            await profiles.add(Profile(**{**PROFILE.__dict__, "nick": "a\x00b"}))
        assert error.value.field == "nick"
    with pytest.raises(EntityNotFoundError):
        await profiles.get(7)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The URL of a fresh SQLite file."""
    return f"sqlite+aiosqlite:///{tmp_path / 'fallback.db'}"


class Gadget(Model):
    id: str = Key()
    name: str = Field()
    weight: int = Field(default=0)


async def test_create_all_creates_every_declared_models_table(sqlite_url: str) -> None:
    """session.create_all() creates every declared model's table; later it finds them fine."""
    for _ in range(2):
        async with Session(memory="memory://", fallback=sqlite_url) as session:
            await session.create_all()
    async with Session() as session:
        await session.create_all()  # memory:// has no schema: nothing to do
    tables = {name for (name,) in await plain(sqlite_url, "SELECT name FROM sqlite_master")}
    assert {"gadget", "profile", "follow", "ranking", "level", "ranking_score_idx"} <= tables


async def test_changed_model_names_its_columns(sqlite_url: str, postgres_url: str) -> None:
    """A model whose fields changed since its table was made: ConfigurationError naming columns."""

    class Changed(Model):
        id: str = Key()
        name: bytes = Field()
        size: int = Field()

        class Meta:
            key_name = "gadget"

    for url in (sqlite_url, postgres_url):
        async with Session(memory="memory://", fallback=url) as session:
            await Gadget.objects.using(session).add(Gadget(id="g", name="G", weight=3))
        async with Session(memory="memory://", fallback=url) as session:
            with pytest.raises(ConfigurationError) as error:
                await Changed.objects.using(session).get("g")
        message = str(error.value)
        assert error.value.model == "Changed"
        assert "table 'gadget' does not match the model" in message
        assert "column name is TEXT NOT NULL, the model needs " in message
        assert "missing column size BIGINT NOT NULL (ALTER TABLE gadget ADD COLUMN" in message
        assert "column weight is not in the model and is NOT NULL without a default" in message


async def test_added_optional_field_is_an_alter_table_away(sqlite_url: str) -> None:
    """The README's migration: ALTER TABLE ... ADD COLUMN makes the new optional field work."""

    class Grown(Model):
        id: str = Key()
        name: str = Field()
        weight: int = Field(default=0)
        color: str | None = Field(default=None)

        class Meta:
            key_name = "gadget"

    async with Session(memory="memory://", fallback=sqlite_url) as session:
        await Gadget.objects.using(session).add(Gadget(id="g", name="G", weight=3))
    async with Session(memory="memory://", fallback=sqlite_url) as session:
        with pytest.raises(
            ConfigurationError,
            match=r"missing column color TEXT \(ALTER TABLE gadget ADD COLUMN color TEXT\)\. ",
        ):
            await Grown.objects.using(session).get("g")
    await plain(sqlite_url, "ALTER TABLE gadget ADD COLUMN color TEXT")
    async with Session(memory="memory://", fallback=sqlite_url) as session:
        assert await Grown.objects.using(session).get("g") == Grown(id="g", name="G", weight=3)


async def test_unreachable_database_fails_fast_with_masked_url() -> None:
    """A refused connection is a BackendError at once, naming the URL without its password."""
    url = f"postgresql+asyncpg://app:hunter2@127.0.0.1:{free_port()}/app"
    async with Session(memory="memory://", fallback=url) as session:
        started = time.monotonic()
        with pytest.raises(BackendError) as error:
            await Person.objects.using(session).get("a")
    assert time.monotonic() - started < 2
    assert "hunter2" not in str(error.value)
    assert f"{url.replace('hunter2', '***')}" in str(error.value)
    assert error.value.url == url.replace("hunter2", "***")


def test_store_survives_new_event_loops(sqlite_url: str, postgres_url: str) -> None:
    """One session used from several asyncio.run calls opens an engine per loop and closes it."""
    for url in (sqlite_url, postgres_url):
        session = Session(memory=InProcessRedis(), fallback=url)
        people = Person.objects.using(session)
        asyncio.run(people.add(Person(id="a", name="A")))
        for _ in range(2):
            assert asyncio.run(session.fallback.get_many(Person._meta, ["a"])) == [
                Person(id="a", name="A")
            ]
        asyncio.run(session.close())


def test_bad_urls_are_configuration_errors() -> None:
    """An unknown SQL scheme or a driver the fallback has no upsert for fails at configuration."""
    with pytest.raises(ConfigurationError, match="no fallback backend for 'mysql\\+aiomysql"):
        Session(fallback="mysql+aiomysql://u:pw@h/db")
    with pytest.raises(ConfigurationError, match=r"asyncio driver, not mssql\+aioodbc") as error:
        SQLFallback("mssql+aioodbc://u:secret@h/db")
    assert "secret" not in str(error.value)
    with pytest.raises(ConfigurationError, match=r"not sqlite\+pysqlite"):
        SQLFallback("sqlite+pysqlite:///x.db")
    with pytest.raises(ConfigurationError, match="malformed URL: Invalid IPv6 URL"):
        SQLFallback("postgresql+asyncpg://u:secret@[oops/db")


@pytest.fixture
def lone_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL of this test alone, which the test stops and starts."""
    with postgres_server() as server:
        yield server


async def test_postgres_stopped_mid_run(
    lone_postgres: PostgresServer, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """Down mid-run: Redis still serves, writes fail fast, and nothing acknowledged is lost.

    The failures open the fallback's circuit breaker, so later writes fail at once.
    """
    from dbdaora.backends.redis.single import RedisStore

    server = lone_postgres
    async with Session(memory=RedisStore(redis_proc.url), fallback=server.url) as session:
        people = Person.objects.using(session)
        acknowledged: list[Person] = []
        failed: list[str] = []
        failures: list[float] = []
        enough = asyncio.Event()

        async def writer() -> None:
            for i in range(10_000):
                person = Person(id=f"p{i}", name=f"P{i}", age=i)
                started = time.monotonic()
                try:
                    await people.add(person)
                except BackendError:
                    failures.append(time.monotonic() - started)
                    failed.append(person.id)
                    if len(failures) == 20:
                        return
                    continue
                acknowledged.append(person)
                if len(acknowledged) == 50:
                    enough.set()
                await asyncio.sleep(0)

        async def stop_after_some_writes() -> None:
            await enough.wait()
            await asyncio.to_thread(server.stop, "immediate")

        await asyncio.gather(writer(), stop_after_some_writes())
        assert len(acknowledged) >= 50 and len(failures) == 20
        assert max(failures) < 1, failures
        for person in acknowledged:
            assert await people.get(person.id) == person
        assert not any(raw_redis.exists(f"person:{id_}") for id_ in failed)
        assert session.stats()["breakers"]["fallback"] == "open"

        raw_redis.flushall()
        with pytest.raises(BackendError):
            await people.get("p0")
        await asyncio.to_thread(server.start)
        # The store reconnects by itself (straight to it: a session's breaker may still be open).
        ids = [person.id for person in acknowledged]
        assert await session.fallback.get_many(Person._meta, ids) == acknowledged
