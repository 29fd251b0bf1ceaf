"""What a score may be: NaN is refused before any I/O; ±inf is stored and read back exactly
by every fallback (issue 14)."""

from __future__ import annotations

import math

import pytest

from dbdaora import EntityNotFoundError, Session, ValidationError
from tests.support.models import Ranking
from tests.support.raw import RawView

NAN = float("nan")
INF = math.inf


async def test_nan_score_is_a_validation_error_before_any_io(session: Session) -> None:
    """NaN in a Score(), in replace()'s members or a range bound: ValidationError, no I/O."""
    rankings = Ranking.objects.using(session)
    attempts = [
        lambda: Ranking(board="b", player="p", points=NAN),
        lambda: rankings.replace("b", members=[("p", NAN)]),
        lambda: rankings.range_by_score("b", min=NAN),
    ]

    async def attempt(i: int) -> None:
        made = attempts[i % len(attempts)]()
        if not isinstance(made, Ranking):
            await made

    for i in range(10):
        with pytest.raises(ValidationError) as caught:
            await attempt(i)
        assert caught.value.model == "Ranking"
        assert caught.value.field in ("points", "min")
        assert caught.value.value != caught.value.value  # the NaN itself
    entity = Ranking(board="b", player="p", points=1.0)
    with pytest.raises(ValidationError):
        entity.points = NAN
    assert session.stats()["breakers"] == {"memory": "closed", "fallback": "closed"}
    assert session.stats()["models"].get("Ranking", {}).get("fallback_writes", 0) == 0
    with pytest.raises(EntityNotFoundError):
        await rankings.get("b")
    await rankings.add(entity)
    assert await rankings.get("b") == [entity]


async def test_infinite_scores_round_trip_through_every_fallback(
    session: Session, raw: RawView
) -> None:
    """-inf and inf scores are kept exactly by the fallback, and ordered as Redis orders them."""
    rankings = Ranking.objects.using(session)
    await rankings.add(
        Ranking(board="b", player="low", points=-INF),
        Ranking(board="b", player="mid", points=0.5),
        Ranking(board="b", player="high", points=INF),
    )
    raw.delete(b"ranking:b")  # the next read comes from the fallback
    found = await rankings.get("b")
    assert [(r.player, r.points) for r in found] == [("low", -INF), ("mid", 0.5), ("high", INF)]
    assert raw.zrange(b"ranking:b") == [(b"low", -INF), (b"mid", 0.5), (b"high", INF)]
    assert [r.player for r in await rankings.range_by_score("b", min=INF)] == ["high"]
    await rankings.replace("b", members=[("x", INF), ("y", -INF)])
    raw.delete(b"ranking:b")
    assert [(r.player, r.points) for r in await rankings.get("b")] == [("y", -INF), ("x", INF)]
