"""The hash-model contract, run over every Redis-side backend."""

from __future__ import annotations

import pytest

from dbdaora import EntityNotFoundError, Session
from tests.support.models import Follow, Person, Profile, sample_profile
from tests.support.raw import RawView


async def test_add_then_get_round_trips(session: Session) -> None:
    """An added entity reads back equal."""
    people = Person.objects.using(session)
    await people.add(Person(id="john_doe", name="John Doe", age=33))
    assert await people.get("john_doe") == Person(id="john_doe", name="John Doe", age=33)


async def test_add_writes_the_layout_of_dbdaora_027(session: Session, raw: RawView) -> None:
    """The hash lives at <key_name>:<id> with every field as text, key included, and a TTL."""
    await Person.objects.using(session).add(Person(id="john_doe", name="John Doe", age=33))
    assert raw.hgetall(b"person:john_doe") == {
        b"id": b"john_doe",
        b"name": b"John Doe",
        b"age": b"33",
    }
    ttl = raw.ttl(b"person:john_doe")
    assert ttl is not None and 55 < ttl <= 60
    assert raw.all_keys() == {b"person:john_doe"}


async def test_add_writes_the_fallback_first(session: Session) -> None:
    """After add, the fallback holds the entity, so Redis losing it loses nothing."""
    await Person.objects.using(session).add(Person(id="ann", name="Ann"))
    assert await session.fallback.get_many(Person._meta, ["ann"]) == [
        Person(id="ann", name="Ann", age=0)
    ]


async def test_get_reads_through_and_fills_redis(session: Session, raw: RawView) -> None:
    """A Redis miss reads the fallback and writes the hash back with the model's TTL."""
    await session.fallback.put_many(Person._meta, ["bob"], [Person(id="bob", name="Bob", age=5)])
    assert await Person.objects.using(session).get("bob") == Person(id="bob", name="Bob", age=5)
    assert raw.hgetall(b"person:bob") == {b"id": b"bob", b"name": b"Bob", b"age": b"5"}
    ttl = raw.ttl(b"person:bob")
    assert ttl is not None and 55 < ttl <= 60
    assert not raw.exists(b"person:not-found:bob")


async def test_missing_entity_sets_a_not_found_marker(session: Session, raw: RawView) -> None:
    """Not in Redis nor the fallback: EntityNotFoundError, and a marker with the TTL."""
    people = Person.objects.using(session)
    with pytest.raises(EntityNotFoundError) as error:
        await people.get("nobody")
    assert isinstance(error.value, KeyError)
    assert error.value.model == "Person" and error.value.key == ("nobody",)
    assert "Person ('nobody',) not found" in str(error.value)
    assert raw.get(b"person:not-found:nobody") == b"1"
    ttl = raw.ttl(b"person:not-found:nobody")
    assert ttl is not None and 55 < ttl <= 60


async def test_marker_answers_without_the_fallback(session: Session) -> None:
    """Once marked, a record put straight into the fallback is not seen until add or expiry."""
    people = Person.objects.using(session)
    with pytest.raises(EntityNotFoundError):
        await people.get("ghost")
    await session.fallback.put_many(Person._meta, ["ghost"], [Person(id="ghost", name="G")])
    with pytest.raises(EntityNotFoundError):
        await people.get("ghost")
    assert not await people.exists("ghost")


async def test_add_clears_the_marker(session: Session, raw: RawView) -> None:
    """An add after a not-found answer is read at once."""
    people = Person.objects.using(session)
    with pytest.raises(EntityNotFoundError):
        await people.get("late")
    await people.add(Person(id="late", name="Late"))
    assert not raw.exists(b"person:not-found:late")
    assert (await people.get("late")).name == "Late"


async def test_add_overwrites_every_field(session: Session, raw: RawView) -> None:
    """A field set to None on a second add is gone from the hash, not left over."""
    profiles = Profile.objects.using(session)
    first = sample_profile(nick="old")
    await profiles.add(first)
    assert raw.hgetall(b"profile:7")[b"nick"] == b"old"
    await profiles.add(sample_profile(nick=None))
    assert b"nick" not in raw.hgetall(b"profile:7")
    assert (await profiles.get(7)).nick is None


async def test_partial_read_uses_defaults(session: Session) -> None:
    """fields= reads only those fields; the others take their defaults."""
    people = Person.objects.using(session)
    await people.add(Person(id="john_doe", name="John Doe", age=33))
    assert await people.get("john_doe", fields=["name"]) == Person(
        id="john_doe", name="John Doe", age=0
    )


async def test_partial_read_through(session: Session, raw: RawView) -> None:
    """A partial read of a Redis miss fills the whole hash and answers the part."""
    await session.fallback.put_many(Person._meta, ["c"], [Person(id="c", name="C", age=9)])
    got = await Person.objects.using(session).get("c", fields=["age"])
    assert got.age == 9 and got.id == "c" and got.name is None
    assert raw.hgetall(b"person:c") == {b"id": b"c", b"name": b"C", b"age": b"9"}


async def test_get_many_keeps_order_and_drops_missing(session: Session, raw: RawView) -> None:
    """get_many answers found entities in the order asked; misses are read through."""
    people = Person.objects.using(session)
    await people.add(Person(id="a", name="A"), Person(id="c", name="C"))
    await session.fallback.put_many(Person._meta, ["b"], [Person(id="b", name="B")])
    raw.delete(b"person:a")
    found = await people.get_many(["c", "zz", "a", "b"])
    assert [p.id for p in found] == ["c", "a", "b"]
    assert raw.hgetall(b"person:b")[b"name"] == b"B"
    assert raw.get(b"person:not-found:zz") == b"1"
    assert [p.name for p in await people.get_many(["b", "a"], fields=["name"])] == ["B", "A"]
    assert await people.get_many([]) == []


async def test_exists(session: Session) -> None:
    """exists answers from Redis, then the fallback."""
    people = Person.objects.using(session)
    await session.fallback.put_many(Person._meta, ["f"], [Person(id="f", name="F")])
    await people.add(Person(id="r", name="R"))
    assert await people.exists("r")
    assert await people.exists("f")
    assert not await people.exists("none")


async def test_delete_removes_both_and_marks(session: Session, raw: RawView) -> None:
    """delete drops the fallback record and the hash, and leaves a not-found marker."""
    people = Person.objects.using(session)
    await people.add(Person(id="d", name="D"))
    await people.delete("d")
    assert await session.fallback.get_many(Person._meta, ["d"]) == [None]
    assert not raw.exists(b"person:d")
    assert raw.get(b"person:not-found:d") == b"1"
    with pytest.raises(EntityNotFoundError):
        await people.get("d")


async def test_composite_keys(session: Session, raw: RawView) -> None:
    """Key parts go in declaration order, by position or by name."""
    follows = Follow.objects.using(session)
    await follows.add(Follow(user="ann", other="bob", since=2020))
    assert raw.hgetall(b"follow:ann:bob") == {b"user": b"ann", b"other": b"bob", b"since": b"2020"}
    assert await follows.get("ann", "bob") == Follow(user="ann", other="bob", since=2020)
    assert await follows.get(user="ann", other="bob") == Follow(user="ann", other="bob", since=2020)
    assert [f.since for f in await follows.get_many([("ann", "bob"), ("bob", "ann")])] == [2020]
    await follows.delete(other="bob", user="ann")
    assert not await follows.exists("ann", "bob")


async def test_value_encoding(session: Session, raw: RawView) -> None:
    """Every supported type is stored as the documented text and reads back equal."""
    profiles = Profile.objects.using(session)
    entity = sample_profile()
    await profiles.add(entity)
    assert raw.hgetall(b"profile:7") == {
        b"id": b"7",
        b"active": b"1",
        b"ratio": b"0.25",
        b"born": b"1990-05-17",
        b"seen": b"2026-01-02T03:04:05+00:00",
        b"balance": b"10.10",
        b"color": b'"blue"',
        b"tags": '["a","ç"]'.encode(),
        b"extra": b'{"x":1}',
        b"address": b'{"street":"Main","number":10}',
        b"nick": b"pro",
        b"avatar": b"\x00\xff",
    }
    assert await profiles.get(7) == entity
    raw.delete(b"profile:7")
    assert await profiles.get(7) == entity


async def test_optional_none_is_absent(session: Session, raw: RawView) -> None:
    """None means the field is absent from the hash."""
    await Profile.objects.using(session).add(sample_profile(address=None, nick=None, active=False))
    stored = raw.hgetall(b"profile:7")
    assert b"address" not in stored and b"nick" not in stored
    assert stored[b"active"] == b"0"


async def test_expire_time_none_sets_no_ttl(backend: tuple[object, RawView]) -> None:
    """expire_time=None writes keys without expiry."""
    from dbdaora.backends import DictFallback

    store, raw = backend
    async with Session(memory=store, fallback=DictFallback(), expire_time=None) as session:  # type: ignore[arg-type]
        await Follow.objects.using(session).add(Follow(user="a", other="b", since=1))
        with pytest.raises(EntityNotFoundError):
            await Follow.objects.using(session).get("x", "y")
    assert raw.ttl(b"follow:a:b") is None
    assert raw.ttl(b"follow:not-found:x:y") is None


async def test_session_expire_time_applies_without_meta(session: Session, raw: RawView) -> None:
    """A model without Meta.expire_time takes the session's."""
    await Follow.objects.using(session).add(Follow(user="a", other="b", since=1))
    ttl = raw.ttl(b"follow:a:b")
    assert ttl is not None and 3590 < ttl <= 3600


async def test_corrupt_hash_is_a_miss(
    session: Session, raw: RawView, caplog: pytest.LogCaptureFixture
) -> None:
    """A field that will not parse logs a warning, reads the fallback and rewrites Redis."""
    people = Person.objects.using(session)
    await people.add(Person(id="x", name="X", age=4))
    raw.hset(b"person:x", b"age", b"four")
    with caplog.at_level("WARNING", logger="dbdaora"):
        assert await people.get("x") == Person(id="x", name="X", age=4)
    assert "corrupt" in caplog.text and "person:x" in caplog.text
    assert raw.hgetall(b"person:x")[b"age"] == b"4"
    raw.hset(b"person:x", b"age", b"four")
    assert [p.age for p in await people.get_many(["x"])] == [4]
    raw.hset(b"person:x", b"age", b"four")
    assert (await people.get("x", fields=["age"])).age == 4
