"""SortedSetManager.replace (the whole set at once, InProcessRedis.put_sorted_set), over every
contract stack, and while Redis is down."""

from __future__ import annotations

import pytest

from dbdaora import EntityNotFoundError, Session, ValidationError
from dbdaora.backends import DictFallback, InProcessRedis
from tests.support.models import Ranking, Top
from tests.support.raw import RawView


async def test_replace_swaps_every_member(session: Session, raw: RawView) -> None:
    """replace leaves exactly the new members, in Redis (with its TTL) and in the fallback."""
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b1", player="old", points=1))
    await rankings.replace("b1", members=[("ann", 10), ("bob", 7.5), ("ann", 11)])
    assert raw.zrange(b"ranking:b1") == [(b"bob", 7.5), (b"ann", 11.0)]
    ttl = raw.ttl(b"ranking:b1")
    assert ttl is not None and 3590 < ttl <= 3600
    assert sorted(await session.fallback.get_members(Ranking._meta, "b1") or []) == [
        ("ann", 11.0),
        ("bob", 7.5),
    ]
    assert [(r.player, r.points) for r in await rankings.get(board="b1")] == [
        ("bob", 7.5),
        ("ann", 11.0),
    ]


async def test_replace_ends_a_not_found_marker(session: Session, raw: RawView) -> None:
    """A set once answered as not found is found after replace; the marker is gone."""
    rankings = Ranking.objects.using(session)
    with pytest.raises(EntityNotFoundError):
        await rankings.get("b1")
    assert raw.get(b"ranking:not-found:b1") == b"1"
    await rankings.replace("b1", members=[("ann", 1)])
    assert not raw.exists(b"ranking:not-found:b1")
    assert [r.player for r in await rankings.get("b1")] == ["ann"]


async def test_replace_keeps_max_size_and_empty_deletes(session: Session, raw: RawView) -> None:
    """With Meta.max_size only the highest scores stay; no members deletes the set."""
    tops = Top.objects.using(session)
    await tops.replace("b1", members=[(f"p{i}", i) for i in range(6)])
    assert raw.zrange(b"top:b1") == [(b"p3", 3.0), (b"p4", 4.0), (b"p5", 5.0)]
    assert len(await session.fallback.get_members(Top._meta, "b1") or []) == 3
    await tops.replace("b1", members=[])
    assert not raw.exists(b"top:b1")
    with pytest.raises(EntityNotFoundError):
        await tops.get("b1")


async def test_replace_checks_before_io(session: Session, raw: RawView) -> None:
    """Bad pairs, members or scores are ValidationErrors and nothing is written."""
    rankings = Ranking.objects.using(session)
    for members, message in [
        ([("ann",)], r"\(member, score\) pairs"),
        ([("ann", "ten")], "expected float"),
        ([("ann", True)], "expected float"),
        ([(3, 1.0)], "expected str"),
        ([(None, 1.0)], "expected str"),
    ]:
        with pytest.raises(ValidationError, match=message):
            await rankings.replace("b1", members=members)
    assert raw.all_keys() == set()


async def test_replace_while_redis_is_down() -> None:
    """With Redis down replace writes the fallback and succeeds; once Redis answers, the
    stale set is deleted before anything is read, so the new members are served."""
    memory, fallback = InProcessRedis(), DictFallback()
    session = Session(memory=memory, fallback=fallback, breaker=None)
    rankings = Ranking.objects.using(session)
    await rankings.add(Ranking(board="b1", player="old", points=1))
    memory.down = True
    await rankings.replace("b1", members=[("new", 2)])
    assert [r.player for r in await rankings.get("b1")] == ["new"]  # from the fallback
    memory.down = False
    assert memory.raw(b"ranking:b1") == {b"old": 1.0}  # stale, until the next Redis command
    assert [r.player for r in await rankings.get("b1")] == ["new"]
    assert memory.raw(b"ranking:b1") == {b"new": 2.0}
