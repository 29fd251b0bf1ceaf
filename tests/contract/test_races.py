"""Interleavings of a read-through with writes: Redis never ends up older than the fallback.

A fallback wrapper pauses inside a read so a write can run in the gap, the way a
slow durable store lets concurrent requests overtake each other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from dbdaora import EntityNotFoundError, Session
from dbdaora.backends import DictFallback
from dbdaora.meta import ModelMeta
from tests.support.models import Person, Ranking
from tests.support.raw import RawView


class PausingFallback(DictFallback):
    """A dict fallback whose next read (or sorted-set add) stops until released."""

    def __init__(self) -> None:
        super().__init__()
        self.pause_reads = False
        self.pause_adds = False
        self.reached = asyncio.Event()
        self.release = asyncio.Event()

    async def _pause(self) -> None:
        self.reached.set()
        await self.release.wait()

    async def get_many(self, meta: ModelMeta, names: Sequence[str]) -> list[Any | None]:
        found = await super().get_many(meta, names)
        if self.pause_reads:
            self.pause_reads = False
            await self._pause()
        return found

    async def get_members(self, meta: ModelMeta, name: str) -> list[tuple[str, float]] | None:
        found = await super().get_members(meta, name)
        if self.pause_reads:
            self.pause_reads = False
            await self._pause()
        return found

    async def add_members(self, meta: ModelMeta, name: str, members: Any, max_size: Any) -> bool:
        created = await super().add_members(meta, name, members, max_size)
        if self.pause_adds:
            self.pause_adds = False
            await self._pause()
        return created


async def _racing(fallback: PausingFallback, slow: Any, fast: Any) -> Any:
    """Run ``slow`` until it pauses in the fallback, run ``fast`` whole, then finish ``slow``."""
    task = asyncio.ensure_future(slow)
    await fallback.reached.wait()
    await fast
    fallback.release.set()
    return await asyncio.gather(task, return_exceptions=True)


async def _session(backend: tuple[Any, RawView]) -> tuple[Session, PausingFallback]:
    fallback = PausingFallback()
    return Session(memory=backend[0], fallback=fallback), fallback


async def test_read_through_does_not_overwrite_a_newer_add(backend: tuple[Any, RawView]) -> None:
    """A fill of an old value loses to an add that landed while the fallback was read."""
    session, fallback = await _session(backend)
    people = Person.objects.using(session)
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="old")])
    fallback.pause_reads = True
    (read,) = await _racing(fallback, people.get("a"), people.add(Person(id="a", name="new")))
    assert read.name == "old"  # it began before the add: either answer is allowed
    assert backend[1].hgetall(b"person:a")[b"name"] == b"new"
    assert (await people.get("a")).name == "new"


async def test_read_through_does_not_resurrect_a_delete(backend: tuple[Any, RawView]) -> None:
    """A fill racing a delete is dropped; the not-found marker stays."""
    session, fallback = await _session(backend)
    people = Person.objects.using(session)
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="old")])
    fallback.pause_reads = True
    await _racing(fallback, people.get("a"), people.delete("a"))
    assert not backend[1].exists(b"person:a")
    assert backend[1].get(b"person:not-found:a") == b"1"


async def test_not_found_fill_does_not_hide_a_new_add(backend: tuple[Any, RawView]) -> None:
    """A not-found answer racing an add does not leave a marker over the new entity."""
    session, fallback = await _session(backend)
    people = Person.objects.using(session)
    fallback.pause_reads = True
    (read,) = await _racing(fallback, people.get("a"), people.add(Person(id="a", name="new")))
    assert isinstance(read, EntityNotFoundError)
    assert not backend[1].exists(b"person:not-found:a")
    assert (await people.get("a")).name == "new"


async def test_set_fill_does_not_drop_a_new_member(backend: tuple[Any, RawView]) -> None:
    """A sorted-set fill from before an add does not leave Redis without the new member."""
    session, fallback = await _session(backend)
    rankings = Ranking.objects.using(session)
    await fallback.add_members(Ranking._meta, "b", [("ann", 1.0)], None)
    fallback.pause_reads = True
    await _racing(
        fallback, rankings.get("b"), rankings.add(Ranking(board="b", player="bob", points=2))
    )
    assert [r.player for r in await rankings.get("b")] == ["ann", "bob"]


async def test_set_creation_racing_another_add(backend: tuple[Any, RawView]) -> None:
    """A writer that created a set does not put it in Redis if another write came between."""
    session, fallback = await _session(backend)
    rankings = Ranking.objects.using(session)
    fallback.pause_adds = True
    await _racing(
        fallback,
        rankings.add(Ranking(board="b", player="ann", points=1)),
        rankings.add(Ranking(board="b", player="bob", points=2)),
    )
    assert [r.player for r in await rankings.get("b")] == ["ann", "bob"]


async def test_set_fill_does_not_keep_a_removed_member(backend: tuple[Any, RawView]) -> None:
    """A fill racing a remove is dropped."""
    session, fallback = await _session(backend)
    rankings = Ranking.objects.using(session)
    await fallback.add_members(Ranking._meta, "b", [("ann", 1.0), ("bob", 2.0)], None)
    fallback.pause_reads = True
    await _racing(fallback, rankings.get("b"), rankings.remove("b", "bob"))
    assert [r.player for r in await rankings.get("b")] == ["ann"]
