"""Restarts on memory://: an InProcessRedis restarted from an older snapshot."""

from __future__ import annotations

import asyncio

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from tests.support.models import Person


async def test_a_periodic_check_sweeps_an_older_snapshot_within_the_interval() -> None:
    """A restart no call saw fail: the next periodic check sweeps the older copy."""
    store = InProcessRedis()
    async with Session(memory=store, fallback=DictFallback(), repair_interval=0.2) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="old"))
        snapshot = store.snapshot()
        await people.add(Person(id="a", name="new"))
        store.restart(snapshot)
        assert store.raw(b"person:a")[b"name"] == b"old"  # type: ignore[index,call-overload]  # a hash
        await asyncio.sleep(0.25)
        await people.get("a")  # starts the periodic check aside
        await asyncio.sleep(0.05)
        assert (await people.get("a")).name == "new"
        assert b"old" not in (store.raw(b"person:a") or {}).values()  # type: ignore[union-attr]


async def test_a_failed_call_makes_the_next_call_check_first() -> None:
    """After a failed call, the next one finds the restart before Redis serves it."""
    store = InProcessRedis()
    async with Session(memory=store, fallback=DictFallback(), repair_interval=60) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="a", name="old"))
        snapshot = store.snapshot()
        await people.add(Person(id="a", name="new"))
        store.down = True
        assert (await people.get("a")).name == "new"  # from the fallback
        store.restart(snapshot)
        store.down = False
        assert (await people.get("a")).name == "new"


async def test_keys_under_a_prefix_with_no_epoch_are_adopted_not_swept() -> None:
    """A Redis no dbdaora session checked yet (dbdaora 0.27's data) keeps its keys."""
    store = InProcessRedis()
    async with Session(memory=store, fallback=DictFallback()) as writer:
        await Person.objects.using(writer).add(Person(id="a", name="in redis"))
    store._delete(b"dbdaora:epoch")  # as if no session had ever recorded an epoch
    async with Session(memory=store, fallback=DictFallback()) as session:
        people = Person.objects.using(session)
        assert (await people.get("a")).name == "in redis"  # from Redis, its fallback empty
        assert session.stats()["models"]["Person"]["fallback_reads"] == 0
    assert store.raw(b"dbdaora:epoch")


async def test_a_snapshot_older_than_any_epoch_is_swept() -> None:
    """Restarted from a snapshot taken before any session recorded an epoch: swept, not adopted."""
    store = InProcessRedis()
    fallback = DictFallback()
    async with Session(memory=store, fallback=fallback) as writer:
        people = Person.objects.using(writer)
        await people.add(Person(id="a", name="old"))
        snapshot = store.snapshot()
        await people.add(Person(id="a", name="new"))
    store.restart(snapshot)
    store._delete(b"dbdaora:epoch")  # the snapshot predates the first epoch
    assert store.raw(b"person:a")[b"name"] == b"old"  # type: ignore[index,call-overload]  # a hash
    async with Session(memory=store, fallback=fallback) as session:
        assert (await Person.objects.using(session).get("a")).name == "new"
