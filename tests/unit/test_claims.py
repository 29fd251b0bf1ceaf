"""A write's claim on the marker, through the managers on ``memory://``: what happens when
the claim cannot reach Redis, and when one call names a key twice."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.meta import ModelMeta
from tests.support.models import Person, Ranking


class Reviving(DictFallback):
    """A dict fallback that brings Redis back during each write: the claim before the
    write found Redis down, the write's Redis step would find it up."""

    def __init__(self, memory: InProcessRedis) -> None:
        super().__init__()
        self.memory = memory

    async def put_many(
        self, meta: ModelMeta, names: Sequence[str], entities: Sequence[Any]
    ) -> None:
        await super().put_many(meta, names, entities)
        self.memory.down = False

    async def delete(self, meta: ModelMeta, name: str) -> None:
        await super().delete(meta, name)
        self.memory.down = False

    async def add_members(self, meta: ModelMeta, name: str, members: Any, max_size: Any) -> bool:
        created = await super().add_members(meta, name, members, max_size)
        self.memory.down = False
        return created


async def test_a_claim_redis_missed_records_the_keys_for_repair() -> None:
    """Redis down at the claim and back at the step: the write is acknowledged, its keys
    are recorded for repair rather than written, and the next read has the new value."""
    memory = InProcessRedis()
    fallback = Reviving(memory)
    async with Session(memory=memory, fallback=fallback, breaker=None) as session:
        people = Person.objects.using(session)
        boards = Ranking.objects.using(session)
        await people.add(Person(id="a", name="old"), Person(id="b", name="gone"))
        await boards.add(Ranking(board="x", player="p", points=1))
        for write in (
            lambda: people.add(Person(id="a", name="new")),
            lambda: people.delete("b"),
            lambda: boards.add(Ranking(board="x", player="p", points=2)),
        ):
            memory.down = True
            await write()
        recorded = {key for key, _ in await fallback.repairs(10)}
        assert recorded == {
            b"person:a",
            b"person:not-found:a",
            b"person:b",
            b"person:not-found:b",
            b"ranking:x",
            b"ranking:not-found:x",
        }
        assert memory.raw(b"person:a")[b"name"] == b"old"  # type: ignore[index]
        assert (await people.get("a")).name == "new"  # the repair ran first
        assert not await people.exists("b")
        assert [r.points for r in await boards.get("x")] == [2.0]
        assert await fallback.repairs(10) == []


async def test_one_add_naming_a_key_twice_writes_the_last_entity() -> None:
    """Both entities of one key in one add share its claim: Redis gets the last one."""
    memory = InProcessRedis()
    async with Session(memory=memory, fallback=DictFallback(), breaker=None) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="first"), Person(id="a", name="last"))
        assert memory.raw(b"person:a")[b"name"] == b"last"  # type: ignore[index]
        assert (await people.get("a")).name == "last"
