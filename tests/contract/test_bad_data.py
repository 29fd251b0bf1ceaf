"""A key of the wrong Redis type is bad data, not a Redis failure: read through, replaced,
never counted by the Redis breaker (issue 14)."""

from __future__ import annotations

import pytest

from dbdaora import EntityNotFoundError, Session
from tests.support.models import Person, Ranking
from tests.support.raw import RawView

READS = 10  # twice the default breaker's fail_max


def _model_stats(session: Session, model: str) -> dict[str, int]:
    stats: dict[str, int] = session.stats()["models"][model]
    return stats


async def test_wrong_type_hash_key_reads_from_the_fallback(
    session: Session, raw: RawView, caplog: pytest.LogCaptureFixture
) -> None:
    """Every hash read of a string key answers from the fallback and rewrites the hash."""
    people = Person.objects.using(session)
    w, o = Person(id="w", name="W", age=1), Person(id="o", name="O", age=2)
    await people.add(w, o)
    reads = [
        (lambda: people.get("w"), lambda answer: answer == w),
        (
            lambda: people.get("w", fields=["age"]),
            lambda answer: (answer.id, answer.age) == ("w", 1),
        ),
        (lambda: people.get_many(["w", "o"]), lambda answer: answer == [w, o]),
        (lambda: people.exists("w"), lambda answer: answer is True),
    ]
    with caplog.at_level("WARNING", logger="dbdaora"):
        for i in range(READS):
            raw.set(b"person:w", b"x")
            before = _model_stats(session, "Person")
            read, expected = reads[i % len(reads)]
            assert expected(await read())
            after = _model_stats(session, "Person")
            assert after["fallback_reads"] == before["fallback_reads"] + 1
            assert raw.hgetall(b"person:w") == {b"id": b"w", b"name": b"W", b"age": b"1"}
            hits = after["redis_hits"]
            assert await people.get("o") == Person(id="o", name="O", age=2)
            assert _model_stats(session, "Person")["redis_hits"] == hits + 1
    assert session.stats()["breakers"]["memory"] == "closed"
    assert _model_stats(session, "Person")["errors"] == 0
    assert "person:w" in caplog.text


async def test_wrong_type_key_of_an_absent_entity_is_not_found(
    session: Session, raw: RawView
) -> None:
    """A string where no entity is anywhere: not found, and the key dropped."""
    raw.set(b"person:gone", b"x")
    with pytest.raises(EntityNotFoundError):
        await Person.objects.using(session).get("gone")
    assert not raw.exists(b"person:gone")
    assert not await Person.objects.using(session).exists("gone")
    assert session.stats()["breakers"]["memory"] == "closed"


async def test_wrong_type_sorted_set_key_reads_from_the_fallback(
    session: Session, raw: RawView, caplog: pytest.LogCaptureFixture
) -> None:
    """Every sorted-set read of a string key answers from the fallback and refills the set."""
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b", player="p", points=1.0))
    await rankings.add(Ranking(board="o", player="q", points=2.0))
    reads = [
        lambda: rankings.get("b"),
        lambda: rankings.range("b", 0, -1),
        lambda: rankings.range_by_score("b", min=0.0, max=5.0),
        lambda: rankings.count("b"),
        lambda: rankings.exists("b"),
    ]
    with caplog.at_level("WARNING", logger="dbdaora"):
        for i in range(READS):
            raw.set(b"ranking:b", b"x")
            answer = await reads[i % len(reads)]()
            assert answer in ([Ranking(board="b", player="p", points=1.0)], 1, True)
            assert raw.zrange(b"ranking:b") == [(b"p", 1.0)]
            hits = _model_stats(session, "Ranking")["redis_hits"]
            assert await rankings.count("o") == 1
            assert _model_stats(session, "Ranking")["redis_hits"] == hits + 1
    assert session.stats()["breakers"]["memory"] == "closed"
    assert _model_stats(session, "Ranking")["errors"] == 0
    assert "ranking:b" in caplog.text


async def test_sorted_set_writes_to_a_wrong_type_key_succeed(
    session: Session, raw: RawView
) -> None:
    """add and remove on a string key succeed; the key is dropped and the next read fills it."""
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b", player="p", points=1.0))
    raw.set(b"ranking:b", b"x")
    await rankings.add(Ranking(board="b", player="q", points=2.0))
    assert not raw.exists(b"ranking:b")
    assert [r.player for r in await rankings.get("b")] == ["p", "q"]
    raw.set(b"ranking:b", b"x")
    await rankings.remove("b", "p")
    assert [r.player for r in await rankings.get("b")] == ["q"]
    assert raw.zrange(b"ranking:b") == [(b"q", 2.0)]
    assert session.stats()["breakers"]["memory"] == "closed"


async def test_a_hash_holding_another_key_is_corrupt_and_read_through(
    session: Session, raw: RawView, caplog: pytest.LogCaptureFixture
) -> None:
    """A hash whose key field is not its key's (written by someone else) is a miss, rewritten."""
    people = Person.objects.using(session)
    a = Person(id="a", name="A", age=1)
    await people.add(a)
    for read in (lambda: people.get("a"), lambda: people.get_many(["a"])):
        raw.hset(b"person:a", b"id", b"b")
        with caplog.at_level("WARNING", logger="dbdaora"):
            found = await read()
        assert found in (a, [a])
        assert raw.hgetall(b"person:a") == {b"id": b"a", b"name": b"A", b"age": b"1"}
        assert "person:a" in caplog.text
    assert session.stats()["breakers"]["memory"] == "closed"
