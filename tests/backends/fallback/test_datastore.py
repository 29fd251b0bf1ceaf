"""datastore:// on the Cloud Datastore emulator: layout, limits, concurrency, outages.

The contract suite runs over Datastore too (the ``*-datastore`` stacks); these
tests pin what is Datastore's own: the entities as the plain client sees them,
the size limits, transactions and behaviour while the emulator is down.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator

import pytest
from google.cloud import datastore
from google.cloud.datastore.query import PropertyFilter

from dbdaora import (
    BackendError,
    ConfigurationError,
    Field,
    Key,
    Model,
    Session,
    ValidationError,
)
from dbdaora.backends import InProcessRedis
from dbdaora.backends.fallback.datastore.store import DatastoreFallback
from tests.support.datastore_server import DatastoreEmulator, datastore_emulator
from tests.support.models import (
    Follow,
    Person,
    Profile,
    Ranking,
    Seen,
    Top,
    sample_profile,
)

NAMESPACE = "layout"


class Article(Model):
    slug: str = Key()
    title: str = Field(index=True)
    body: str = Field(default="")
    views: int = Field(default=0)
    rating: float = Field(default=0.0)
    draft: bool = Field(default=False)
    published: datetime.datetime = Field()
    edited: datetime.datetime | None = Field(default=None)
    cover: bytes = Field(default=b"")
    tags: list[str] = Field(factory=list)
    day: datetime.date | None = Field(default=None)
    price: decimal.Decimal | None = Field(default=None)
    subtitle: str | None = Field(default=None)


PUBLISHED = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)


def _article(slug: str = "hello", **changes: object) -> Article:
    values: dict[str, object] = {"slug": slug, "title": "Hello", "published": PUBLISHED}
    values.update(changes)
    return Article(**values)  # type: ignore[arg-type]


@pytest.fixture
def emulator(datastore_proc: DatastoreEmulator) -> DatastoreEmulator:
    """The session's emulator, wiped."""
    datastore_proc.reset()
    return datastore_proc


@pytest.fixture
async def store(emulator: DatastoreEmulator) -> AsyncIterator[DatastoreFallback]:
    # A generous timeout: a busy machine slows the emulator; outages are tested apart.
    fallback = DatastoreFallback(emulator.url(NAMESPACE, timeout=30))
    yield fallback
    await fallback.close()


@pytest.fixture
async def session(store: DatastoreFallback) -> AsyncIterator[Session]:
    async with Session(memory=InProcessRedis(), fallback=store) as s:
        yield s


@pytest.fixture
def raw(emulator: DatastoreEmulator) -> Iterator[datastore.Client]:
    """The plain google-cloud-datastore client, in the store's namespace."""
    client = emulator.client(NAMESPACE)
    yield client
    client.close()


def _get(raw: datastore.Client, kind: str, name: str) -> datastore.Entity | None:
    return raw.get(raw.key(kind, name))


# -- layout ------------------------------------------------------------------------------


async def test_hash_entity_layout(session: Session, raw: datastore.Client) -> None:
    """One property per field in native types or codec text; only index=True is indexed."""
    article = _article(
        body="long text",
        views=3,
        rating=4.5,
        edited=datetime.datetime(2026, 1, 2, 3, 4, 5),
        cover=b"\x00\xff",
        tags=["a", "ç"],
        day=datetime.date(2026, 1, 2),
        price=decimal.Decimal("9.90"),
    )
    await Article.objects.using(session).add(article)
    entity = _get(raw, "article", "hello")
    assert entity is not None
    assert entity.key.kind == "article" and entity.key.name == "hello"
    assert entity.key.namespace == NAMESPACE
    assert dict(entity) == {
        "slug": "hello",
        "title": "Hello",
        "body": "long text",
        "views": 3,
        "rating": 4.5,
        "draft": False,
        "published": PUBLISHED,
        "edited": "2026-01-02T03:04:05",
        "cover": b"\x00\xff",
        "tags": '["a","ç"]',
        "day": "2026-01-02",
        "price": "9.90",
    }
    assert isinstance(entity["published"], datetime.datetime)
    assert entity.exclude_from_indexes == set(entity) - {"title"}
    got = (await session.fallback.get_many(Article._meta, ["hello"]))[0]
    assert got == article and type(got.published) is datetime.datetime


async def test_only_indexed_fields_are_queryable(session: Session, raw: datastore.Client) -> None:
    """Field(index=True) is in Datastore's indexes; the other properties are not."""
    await Article.objects.using(session).add(_article(body="text"))
    by_title = raw.query(kind="article", filters=[PropertyFilter("title", "=", "Hello")])
    by_body = raw.query(kind="article", filters=[PropertyFilter("body", "=", "text")])
    assert [e.key.name for e in by_title.fetch()] == ["hello"]
    assert list(by_body.fetch()) == []


async def test_composite_and_int_keys(session: Session, raw: datastore.Client) -> None:
    """Key parts joined with ':' name the entity; key fields are stored as properties."""
    await Follow.objects.using(session).add(Follow(user="ann", other="bob", since=2020))
    entity = _get(raw, "follow", "ann:bob")
    assert entity is not None
    assert dict(entity) == {"user": "ann", "other": "bob", "since": 2020}
    assert entity.exclude_from_indexes == {"user", "other", "since"}
    await Person.objects.using(session).add(Person(id="7", name="Seven"))
    assert _get(raw, "person", "7") is not None


async def test_sorted_set_layout(session: Session, raw: datastore.Client) -> None:
    """A sorted set is one entity whose unindexed 'data' is [member, score, ...] ascending."""
    await Ranking.objects.using(session).add(
        *(
            Ranking(board="b1", player=p, points=s)
            for p, s in [("ann", 10), ("bob", 7), ("cid", 12)]
        )
    )
    entity = _get(raw, "ranking", "b1")
    assert entity is not None
    assert dict(entity) == {"data": ["bob", 7.0, "ann", 10.0, "cid", 12.0]}
    assert entity.exclude_from_indexes == {"data"}
    await Ranking.objects.using(session).remove("b1", "ann", "bob", "cid")
    assert _get(raw, "ranking", "b1") is None


async def test_flag_layout(session: Session, raw: datastore.Client) -> None:
    """A set flag is one entity {"value": True}, unindexed, named by its key parts (0.27's);
    any entity under its key is a set flag, as 0.27 read it."""
    seen = Seen.objects.using(session)
    await seen.add(Seen(user="ann", item=7))
    entity = _get(raw, "seen", "ann:7")
    assert entity is not None
    assert dict(entity) == {"value": True}
    assert entity.exclude_from_indexes == {"value"}
    written = datastore.Entity(raw.key("seen", "bob:3"))
    written.update({"value": "anything"})
    raw.put(written)
    assert await seen.exists_many([("bob", 3), ("bob", 4)]) == [True, False]
    await seen.delete("ann", 7)
    assert _get(raw, "seen", "ann:7") is None


async def test_reads_what_dbdaora_027_wrote(
    store: DatastoreFallback, raw: datastore.Client
) -> None:
    """Entities put by the plain client in the 0.27 layout, text values too, read back."""
    person = datastore.Entity(raw.key("person", "old"), exclude_from_indexes=("id", "name", "age"))
    person.update({"id": "old", "name": "Old", "age": "41"})
    ranking = datastore.Entity(raw.key("ranking", "b9"), exclude_from_indexes=("data",))
    ranking["data"] = ["x", 1.0, "y", 2]
    raw.put_multi([person, ranking])
    assert await store.get_many(Person._meta, ["old", "none"]) == [
        Person(id="old", name="Old", age=41),
        None,
    ]
    assert await store.get_members(Ranking._meta, "b9") == [("x", 1.0), ("y", 2.0)]


async def test_reads_json_fields_as_dbdaora_027_stored_them(
    store: DatastoreFallback, raw: datastore.Client
) -> None:
    """A list, a dict and a nested record as an array and embedded entities (0.27 stored a
    dataclass's so) read as the JSON they stand for; a value that is none fails loudly."""
    await store.put_many(Profile._meta, ["7"], [sample_profile()])
    record = raw.get(raw.key("profile", "7"))
    extra, address = datastore.Entity(), datastore.Entity()
    extra["x"] = 1
    address.update({"street": "Main", "number": 10})
    record.update({"tags": ["a", "ç"], "extra": extra, "address": address})
    raw.put(record)
    assert await store.get_many(Profile._meta, ["7"]) == [sample_profile()]
    record["tags"] = [b"\x00"]
    raw.put(record)
    with pytest.raises(BackendError, match=r"Profile\.tags: \[b'\\x00'\] is not JSON data"):
        await store.get_many(Profile._meta, ["7"])


async def test_unreadable_entity_is_a_backend_error(
    store: DatastoreFallback, raw: datastore.Client
) -> None:
    """A property that does not decode to its field's type fails loudly, naming it."""
    person = datastore.Entity(raw.key("person", "bad"))
    person.update({"id": "bad", "name": "Bad", "age": "forty"})
    raw.put(person)
    with pytest.raises(BackendError, match=r"Person\.age: cannot parse b'forty'"):
        await store.get_many(Person._meta, ["bad"])


async def test_round_trip_of_every_type(session: Session) -> None:
    """Every field type reads back equal from Datastore (Redis emptied first)."""
    profiles = Profile.objects.using(session)
    entity = sample_profile(seen=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    await profiles.add(entity, sample_profile(id=8, nick=None, address=None))
    session.memory = InProcessRedis()
    assert await profiles.get_many([7, 8]) == [
        entity,
        sample_profile(id=8, nick=None, address=None),
    ]


# -- configuration ----------------------------------------------------------------------


async def test_url_and_emulator_variable(
    emulator: DatastoreEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """datastore:// opens by URL; without emulator_host it follows DATASTORE_EMULATOR_HOST."""
    monkeypatch.setenv("DATASTORE_EMULATOR_HOST", emulator.host)
    async with Session(memory="memory://", fallback="datastore://dbdaora-test") as session:
        await Person.objects.using(session).add(Person(id="v", name="V"))
    async with Session(memory="memory://", fallback=emulator.url()) as session:
        assert await Person.objects.using(session).get("v") == Person(id="v", name="V")


@pytest.mark.parametrize(
    "url",
    [
        "datastore://",
        "datastore://p?colour=red",
        "datastore://p?pool_size=0",
        "datastore://p?pool_size=2.5",
        "datastore://p?timeout=soon",
    ],
)
def test_bad_urls(url: str) -> None:
    """A URL without a project, with an unknown option or a bad number is refused."""
    with pytest.raises(ConfigurationError, match="datastore://"):
        DatastoreFallback(url)


def test_store_survives_new_event_loops(emulator: DatastoreEmulator) -> None:
    """One store used from several asyncio.run calls, then closed, then used again."""
    fallback = DatastoreFallback(emulator.url(NAMESPACE, pool_size=2))
    asyncio.run(fallback.put_many(Person._meta, ["a"], [Person(id="a", name="A")]))
    assert asyncio.run(fallback.get_many(Person._meta, ["a"])) == [Person(id="a", name="A")]
    asyncio.run(fallback.close())
    assert asyncio.run(fallback.get_many(Person._meta, ["a"])) == [Person(id="a", name="A")]
    asyncio.run(fallback.close())


# -- limits -----------------------------------------------------------------------------


async def test_indexed_string_limit(session: Session, raw: datastore.Client) -> None:
    """An indexed string over 1,500 UTF-8 bytes is a ValidationError before any write."""
    articles = Article.objects.using(session)
    await articles.add(_article("fits", title="ç" * 750, body="ç" * 5000))
    with pytest.raises(ValidationError, match=r"Article\.title: indexed value is 1,502 bytes") as e:
        await articles.add(_article("a1"), _article("a2", title="ç" * 751))
    assert e.value.model == "Article" and e.value.field == "title"
    assert e.value.value == "ç" * 751
    assert _get(raw, "article", "fits") is not None
    assert _get(raw, "article", "a1") is None and _get(raw, "article", "a2") is None


async def test_entity_size_limit(session: Session, raw: datastore.Client) -> None:
    """An entity over 1,048,572 bytes as sent (key and overhead counted) is refused."""
    articles = Article.objects.using(session)
    await articles.add(_article("big", body="x" * 1_000_000))
    almost = "x" * (1_048_572 - 10)
    with pytest.raises(ValidationError, match=r"over its limit of 1,048,572") as e:
        await articles.add(_article("a1"), _article("a2", body=almost))
    assert e.value.model == "Article" and e.value.field == "body"
    assert isinstance(e.value.value, int) and e.value.value > 1_048_572
    assert "'a2'" in str(e.value)
    assert _get(raw, "article", "a1") is None and _get(raw, "article", "a2") is None
    assert _get(raw, "article", "big") is not None


async def test_sorted_set_size_limit(store: DatastoreFallback) -> None:
    """A set that would outgrow an entity is refused, and the stored set is unchanged."""
    await store.add_members(Ranking._meta, "big", [("first", 1.0)], None)
    members = [(f"{i:04}" + "m" * 600, float(i)) for i in range(2000)]
    with pytest.raises(ValidationError, match=r"Ranking 'big'.*largest property is 'data'"):
        await store.add_members(Ranking._meta, "big", members, None)
    assert await store.get_members(Ranking._meta, "big") == [("first", 1.0)]


async def test_int_and_key_name_limits(session: Session, store: DatastoreFallback) -> None:
    """An int outside 64 bits and a key name over 1,500 bytes are refused before any I/O."""
    with pytest.raises(ValidationError, match=r"Article\.views: .* outside Datastore's 64-bit"):
        await Article.objects.using(session).add(_article(views=2**63))
    with pytest.raises(ValidationError, match=r"Person: key 'x+'\.\.\. is 1,501 bytes") as e:
        await store.get_many(Person._meta, ["x" * 1501])
    assert e.value.model == "Person" and e.value.value == "x" * 1501


# -- concurrency ------------------------------------------------------------------------


async def test_concurrent_adds_lose_no_member(emulator: DatastoreEmulator) -> None:
    """Adds racing from two stores (two processes) all land; one of them created the set."""
    stores = [DatastoreFallback(emulator.url(NAMESPACE, timeout=30)) for _ in range(2)]
    try:
        created = await asyncio.gather(
            *(
                stores[i % 2].add_members(Ranking._meta, "race", [(f"p{i}", float(i))], None)
                for i in range(30)
            )
        )
        assert created.count(True) == 1
        members = await stores[0].get_members(Ranking._meta, "race")
        assert sorted(members or []) == sorted((f"p{i}", float(i)) for i in range(30))
        await asyncio.gather(
            *(
                stores[i % 2].add_members(Top._meta, "top", [(f"p{i}", float(i))], 10)
                for i in range(30)
            )
        )
        top = await stores[1].get_members(Top._meta, "top")
        assert [member for member, _ in top or []] == [f"p{i}" for i in range(20, 30)]
    finally:
        for fallback in stores:
            await fallback.close()


async def test_get_many_batches_past_the_lookup_limit(store: DatastoreFallback) -> None:
    """More ids than one lookup takes come back whole and in order."""
    people = [Person(id=f"p{i}", name=f"P{i}") for i in range(1200)]
    await store.put_many(Person._meta, [p.id for p in people], people)
    names = [p.id for p in reversed(people)] + ["missing"]
    assert await store.get_many(Person._meta, names) == [*reversed(people), None]


# -- outages ----------------------------------------------------------------------------


@pytest.fixture
def private_emulator(datastore_proc: DatastoreEmulator) -> Iterator[DatastoreEmulator]:
    """An emulator of this test's own, to freeze and kill (the session's stays up)."""
    with datastore_emulator() as emulator:
        client = emulator.client()
        client.get(client.key("warm", "up"))  # its first answer is slow: the JVM warms up
        client.close()
        yield emulator


async def test_emulator_down_mid_run(private_emulator: DatastoreEmulator) -> None:
    """Frozen, then killed: Redis keeps serving, writes fail in bounded time, none is lost.

    The failures open the fallback's circuit breaker; reads still come from Redis.
    """
    memory = InProcessRedis()
    fallback = DatastoreFallback(private_emulator.url("outage", timeout=2))
    async with Session(memory=memory, fallback=fallback, breaker={"fail_max": 5}) as session:
        people, rankings = Person.objects.using(session), Ranking.objects.using(session)
        written = [Person(id=f"p{i}", name=f"P{i}", age=i) for i in range(5)]
        await people.add(*written)
        await rankings.add(Ranking(board="b1", player="ann", points=1))
        # Acknowledged means durable: every write that returned is in Datastore.
        assert await fallback.get_many(Person._meta, [p.id for p in written]) == written
        assert await fallback.get_members(Ranking._meta, "b1") == [("ann", 1.0)]

        async def refused(call: Awaitable[object], limit: float) -> None:
            started = time.monotonic()
            with pytest.raises(BackendError) as error:
                await call
            assert time.monotonic() - started < limit
            assert error.value.url == fallback.url and error.value.__cause__ is not None

        private_emulator.pause()
        try:
            await refused(people.add(Person(id="late", name="Late")), 3)
            assert await people.get("p1") == written[1]
        finally:
            private_emulator.resume()
        private_emulator.kill()

        assert await people.get_many([p.id for p in written]) == written
        assert [r.player for r in await rankings.get("b1")] == ["ann"]
        await refused(people.add(Person(id="new", name="New")), 3)
        await refused(people.delete("p0"), 3)
        await refused(rankings.add(Ranking(board="b1", player="bob", points=2)), 3)
        await refused(people.get("never-cached"), 3)
        assert await people.get("p0") == written[0]
        assert [r.player for r in await rankings.get("b1")] == ["ann"]
        for key in (b"person:late", b"person:new"):
            assert memory.raw(key) is None
        assert memory.raw(b"person:not-found:never-cached") != b"1"
        # Five failures in a row: the fallback's breaker is open, Redis still serves.
        assert session.stats()["breakers"] == {"memory": "closed", "fallback": "open"}
        with pytest.raises(BackendError, match="fallback unavailable: circuit breaker open until"):
            await people.add(Person(id="after", name="After"))
        assert await people.get("p2") == written[2]


async def test_create_all_has_nothing_to_create(session: Session) -> None:
    """session.create_all() on Datastore succeeds (kinds need no schema), and data still reads."""
    await session.create_all()
    people = Person.objects.using(session)
    await people.add(Person(id="c1", name="Cat", age=3))
    await session.create_all()
    assert await people.get("c1") == Person(id="c1", name="Cat", age=3)
