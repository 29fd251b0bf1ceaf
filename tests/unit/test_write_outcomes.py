"""What managers do with a failed fallback write's outcome: keep, write or evict Redis copies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from dbdaora import BackendError, EntityNotFoundError, OutcomeUnknownError, Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.meta import ModelMeta
from tests.support.models import Person, Ranking


class Failing(DictFallback):
    """A dict fallback whose writes fail as told, committing only the ``written`` names."""

    def __init__(self) -> None:
        super().__init__()
        self.error: type[BackendError] | None = None
        self.written: set[str] = set()
        self.unknown: set[str] = set()

    def _fail(self, names: Sequence[str]) -> None:
        if self.error is not None:
            raise self.error(
                "told to fail",
                url=self.url,
                written=self.written & set(names),
                unknown=self.unknown & set(names),
            )

    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None:
        if self.error is None:
            return await super().put_many(meta, names, entities)
        done = [i for i, name in enumerate(names) if name in self.written]
        await super().put_many(meta, [names[i] for i in done], [entities[i] for i in done])
        self._fail(names)

    async def add_members(self, meta: ModelMeta, name: str, members: Any, max_size: Any) -> bool:
        self._fail([name])
        return await super().add_members(meta, name, members, max_size)


@pytest.fixture
def stores() -> tuple[InProcessRedis, Failing]:
    return InProcessRedis(), Failing()


async def test_batch_evicts_only_unknown_records(stores: tuple[InProcessRedis, Failing]) -> None:
    """A batch: unknown records lose their copies, written ones get the new value, the
    refused ones keep theirs."""
    memory, fallback = stores
    async with Session(memory=memory, fallback=fallback, breaker=None) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=id_, name="Old") for id_ in "abc"))
        fallback.error, fallback.written, fallback.unknown = OutcomeUnknownError, {"a"}, {"b"}
        with pytest.raises(OutcomeUnknownError):
            await people.add(*(Person(id=id_, name="New") for id_ in "abc"))
        assert memory.raw(b"person:a")[b"name"] == b"New"  # type: ignore[index]
        assert memory.raw(b"person:b") is None
        assert memory.raw(b"person:c")[b"name"] == b"Old"  # type: ignore[index]


async def test_sorted_set_writes(stores: tuple[InProcessRedis, Failing]) -> None:
    """Sorted sets: a refused add keeps the copy, an unknown one evicts it, and a replace
    whose add failed after its delete evicts it."""
    memory, fallback = stores
    async with Session(memory=memory, fallback=fallback, breaker=None) as session:
        rankings = Ranking.objects.using(session)
        await rankings.add(Ranking(board="b", player="ann", points=1))
        fallback.error = BackendError
        with pytest.raises(BackendError):
            await rankings.add(Ranking(board="b", player="bob", points=2))
        assert memory.raw(b"ranking:b") == {b"ann": 1.0}
        fallback.error, fallback.unknown = OutcomeUnknownError, {"b"}
        with pytest.raises(OutcomeUnknownError):
            await rankings.add(Ranking(board="b", player="bob", points=2))
        assert memory.raw(b"ranking:b") is None
        assert [r.player for r in await rankings.get("b")] == ["ann"]
        fallback.error, fallback.unknown = BackendError, set()
        with pytest.raises(BackendError):
            await rankings.replace("b", members=[("cid", 3.0)])
        assert memory.raw(b"ranking:b") is None
        with pytest.raises(EntityNotFoundError):
            await rankings.get("b")
