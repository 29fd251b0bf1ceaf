"""The sorted-set-model contract, run over every Redis-side backend."""

from __future__ import annotations

import pytest

from dbdaora import EntityNotFoundError, Session, ValidationError
from tests.support.models import Ranking, Top
from tests.support.raw import RawView


def _ranking(player: str, points: float, board: str = "b1") -> Ranking:
    return Ranking(board=board, player=player, points=points)


async def _seed(session: Session) -> None:
    await Ranking.objects.using(session).add(
        _ranking("ann", 10), _ranking("bob", 7), _ranking("cid", 12), _ranking("dan", 7)
    )


async def test_add_writes_layout_and_fallback(session: Session, raw: RawView) -> None:
    """One set per key, members as text, float scores; the fallback holds the same pairs."""
    await _seed(session)
    assert raw.zrange(b"ranking:b1") == [
        (b"bob", 7.0),
        (b"dan", 7.0),
        (b"ann", 10.0),
        (b"cid", 12.0),
    ]
    assert sorted(await session.fallback.get_members(Ranking._meta, "b1") or []) == [
        ("ann", 10.0),
        ("bob", 7.0),
        ("cid", 12.0),
        ("dan", 7.0),
    ]
    ttl = raw.ttl(b"ranking:b1")
    assert ttl is not None and 3590 < ttl <= 3600


async def test_get_is_the_whole_set_ascending(session: Session) -> None:
    """get answers every member, ascending by score, ties by member."""
    await _seed(session)
    got = await Ranking.objects.using(session).get("b1")
    assert [(r.player, r.points) for r in got] == [
        ("bob", 7.0),
        ("dan", 7.0),
        ("ann", 10.0),
        ("cid", 12.0),
    ]
    assert all(r.board == "b1" for r in got)


@pytest.mark.parametrize("cold", [False, True], ids=["redis", "read-through"])
async def test_range_semantics(session: Session, raw: RawView, cold: bool) -> None:
    """range and range_by_score follow ZRANGE, from Redis and from the fallback alike."""
    await _seed(session)
    rankings = Ranking.objects.using(session)

    async def players(call: object) -> list[str]:
        if cold:
            raw.delete(b"ranking:b1")
        return [r.player for r in await call]  # type: ignore[attr-defined]

    assert await players(rankings.range("b1", 0, 1)) == ["bob", "dan"]
    assert await players(rankings.range("b1", 0, 1, reverse=True)) == ["cid", "ann"]
    assert await players(rankings.range("b1", -2, -1)) == ["ann", "cid"]
    assert await players(rankings.range("b1", 5, 9)) == []
    assert await players(rankings.range("b1", start=1, stop=2)) == ["dan", "ann"]
    assert await players(rankings.range_by_score("b1", min=7, max=10)) == ["bob", "dan", "ann"]
    assert await players(rankings.range_by_score("b1", min=7, max=10, reverse=True)) == [
        "ann",
        "dan",
        "bob",
    ]
    assert await players(rankings.range_by_score("b1", min=7, max=12, offset=1, count=2)) == [
        "dan",
        "ann",
    ]
    assert await players(rankings.range_by_score("b1", min=100)) == []
    if cold:
        raw.delete(b"ranking:b1")
    assert await rankings.count("b1") == 4


async def test_read_through_fills_the_set(session: Session, raw: RawView) -> None:
    """A missing set is read from the fallback and written back with its TTL."""
    await session.fallback.add_members(Ranking._meta, "b2", [("x", 1.0), ("y", 2.0)], None)
    got = await Ranking.objects.using(session).get("b2")
    assert [r.player for r in got] == ["x", "y"]
    assert raw.zrange(b"ranking:b2") == [(b"x", 1.0), (b"y", 2.0)]
    assert raw.ttl(b"ranking:b2") is not None


async def test_add_to_an_expired_set_does_not_leave_a_partial_set(
    session: Session, raw: RawView
) -> None:
    """Adding to a set Redis no longer holds leaves the next read to fill it whole."""
    await _seed(session)
    raw.delete(b"ranking:b1")
    await Ranking.objects.using(session).add(_ranking("eve", 1))
    assert not raw.exists(b"ranking:b1")
    assert len(await Ranking.objects.using(session).get("b1")) == 5


async def test_missing_set(session: Session, raw: RawView) -> None:
    """A set nowhere: EntityNotFoundError from every read, and a not-found marker."""
    rankings = Ranking.objects.using(session)
    with pytest.raises(EntityNotFoundError):
        await rankings.get("none")
    assert raw.get(b"ranking:not-found:none") == b"1"
    with pytest.raises(EntityNotFoundError):
        await rankings.range("none", 0, 3)
    with pytest.raises(EntityNotFoundError):
        await rankings.count("none")
    assert not await rankings.exists("none")
    await rankings.add(_ranking("z", 1, board="none"))
    assert await rankings.exists("none")
    assert not raw.exists(b"ranking:not-found:none")


async def test_remove_and_delete(session: Session, raw: RawView) -> None:
    """remove drops members from both stores; delete drops the set and marks it."""
    await _seed(session)
    rankings = Ranking.objects.using(session)
    await rankings.remove("b1", "bob", "dan")
    assert [r.player for r in await rankings.get("b1")] == ["ann", "cid"]
    raw.delete(b"ranking:b1")
    assert [r.player for r in await rankings.get("b1")] == ["ann", "cid"]
    await rankings.delete("b1")
    assert not raw.exists(b"ranking:b1")
    assert raw.get(b"ranking:not-found:b1") == b"1"
    assert await session.fallback.get_members(Ranking._meta, "b1") is None
    with pytest.raises(EntityNotFoundError):
        await rankings.get("b1")


async def test_max_size_keeps_the_highest(session: Session, raw: RawView) -> None:
    """With Meta.max_size, only the highest scores stay, in Redis and in the fallback."""
    tops = Top.objects.using(session)
    await tops.add(*(Top(board="t", player=f"p{i}", points=i) for i in range(3)))
    await tops.get("t")
    await tops.add(Top(board="t", player="p9", points=9), Top(board="t", player="p5", points=5))
    assert [t.player for t in await tops.get("t")] == ["p2", "p5", "p9"]
    assert raw.ttl(b"top:t") is None
    raw.delete(b"top:t")
    assert [t.player for t in await tops.get("t")] == ["p2", "p5", "p9"]


async def test_count_and_scores_are_floats(session: Session) -> None:
    """Scores come back as floats even when given as ints."""
    await Ranking.objects.using(session).add(_ranking("a", 3))
    (only,) = await Ranking.objects.using(session).get("b1")
    assert only.points == 3.0 and isinstance(only.points, float)
    assert await Ranking.objects.using(session).count("b1") == 1


async def test_bad_sorted_set_calls(session: Session) -> None:
    """Bad range and remove arguments fail before any I/O, naming what was wrong."""
    rankings = Ranking.objects.using(session)
    with pytest.raises(ValidationError, match=r"Ranking: start must be an int, got 'x'"):
        await rankings.range("b1", "x", 2)
    with pytest.raises(ValidationError, match=r"Ranking: remove\(\) needs at least one member"):
        await rankings.remove("b1")
    with pytest.raises(ValidationError, match=r"Ranking: min must be a number"):
        await rankings.range_by_score("b1", min="low")
    expected = r"Ranking.points: expected float \(not NaN\), got 'high'"
    with pytest.raises(ValidationError, match=expected):
        Ranking(board="b", player="p", points="high")  # type: ignore[arg-type]
