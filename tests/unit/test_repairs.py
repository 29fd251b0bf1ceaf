"""Repair records on memory://: a write Redis missed, recorded, repaired by any session."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from dbdaora import BackendError, ConfigurationError, Session, configure
from dbdaora.backends import DictFallback, InProcessRedis
from dbdaora.backends.fallback.protocol import Repair
from tests.support.models import Person

KEYS = {b"person:a", b"person:not-found:a"}


class CountingFallback(DictFallback):
    """A dict fallback that counts repair reads, and can refuse to record repairs."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.refuse = False

    async def repairs(self, limit: int) -> list[Repair]:
        self.reads += 1
        return await super().repairs(limit)

    async def add_repairs(self, keys: Sequence[bytes]) -> None:
        if self.refuse:
            raise BackendError("refused", url=self.url)
        await super().add_repairs(keys)


def _pair(**options: Any) -> tuple[Session, Session, InProcessRedis, CountingFallback]:
    """Two sessions (two "processes") over one Redis side and one fallback, no breakers."""
    store, fallback = InProcessRedis(), CountingFallback()
    writer = Session(memory=store, fallback=fallback, breaker=None, **options)
    reader = Session(memory=store, fallback=fallback, breaker=None, **options)
    return writer, reader, store, fallback


async def _stale_write(writer: Session, store: InProcessRedis) -> None:
    """``a`` is ``old`` in Redis and ``new`` in the fallback, the write acknowledged."""
    await Person.objects.using(writer).add(Person(id="a", name="old"))
    store.down = True
    await Person.objects.using(writer).add(Person(id="a", name="new"))
    store.down = False


async def test_a_write_redis_missed_is_recorded_then_cleared_by_another_session() -> None:
    """The missed keys are recorded in the fallback; another session deletes and clears them."""
    writer, reader, store, fallback = _pair()
    await _stale_write(writer, store)
    assert set(fallback.repair_records) == KEYS
    assert store.raw(b"person:a") is not None
    assert (await Person.objects.using(reader).get("a")).name == "new"
    assert fallback.repair_records == {}
    await writer.close()


async def test_a_session_past_its_first_call_repairs_within_the_interval() -> None:
    """A reader that already repaired serves the stale copy only until its next periodic repair."""
    writer, reader, store, _ = _pair(repair_interval=0.2)
    people = Person.objects.using(reader)
    await Person.objects.using(writer).add(Person(id="a", name="old"))
    assert (await people.get("a")).name == "old"
    store.down = True
    await Person.objects.using(writer).add(Person(id="a", name="new"))
    store.down = False
    await asyncio.sleep(0.2)
    await people.get("a")  # due: the periodic repair starts aside
    await asyncio.sleep(0.05)
    assert (await people.get("a")).name == "new"
    await writer.close()


async def test_writers_retry_their_repairs_in_the_background() -> None:
    """With no further command, the writer itself deletes its keys once Redis answers."""
    writer, _, store, fallback = _pair(repair_interval=0.05)
    await _stale_write(writer, store)
    for _ in range(100):
        if not fallback.repair_records:
            break
        await asyncio.sleep(0.02)
    assert fallback.repair_records == {}
    assert store.raw(b"person:a") is None
    await writer.close()


async def test_a_record_added_during_a_repair_stays() -> None:
    """Clearing removes only the records the repair read; one recorded again stays."""
    fallback = CountingFallback()
    await fallback.add_repairs([b"k"])
    read = await fallback.repairs(10)
    await fallback.add_repairs([b"k"])
    await fallback.clear_repairs(read)
    assert list(fallback.repair_records) == [b"k"]


async def test_a_write_whose_repair_cannot_be_recorded_raises() -> None:
    """BackendError when the record fails; the fallback has the write, the writer repairs."""
    writer, _, store, fallback = _pair()
    await Person.objects.using(writer).add(Person(id="a", name="old"))
    store.down, fallback.refuse = True, True
    with pytest.raises(BackendError, match="recorded for repair"):
        await Person.objects.using(writer).add(Person(id="a", name="new"))
    store.down = False
    assert (await fallback.get_many(Person._meta, ["a"]))[0].name == "new"
    assert (await Person.objects.using(writer).get("a")).name == "new"
    await writer.close()


async def test_with_nothing_to_repair_a_session_reads_the_records_once_per_interval() -> None:
    """A healthy session asks the fallback for repair records once, not per call."""
    _, reader, _, fallback = _pair(repair_interval=60)
    people = Person.objects.using(reader)
    await people.add(Person(id="a", name="A"))
    for _ in range(200):
        await people.get("a")
    assert fallback.reads == 1


def test_repair_interval_is_validated() -> None:
    """repair_interval must be a positive number, in configure and in Session."""
    with pytest.raises(ConfigurationError, match="repair_interval"):
        configure(repair_interval=0)
    with pytest.raises(ConfigurationError, match="repair_interval"):
        Session(repair_interval=None)  # type: ignore[arg-type]
    configure(repair_interval=0.5)
    assert Session()._repairs.interval == 0.5


class StalledFallback(DictFallback):
    """A dict fallback whose repair read stalls until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.reading = asyncio.Event()
        self.finished = False

    async def repairs(self, limit: int) -> list[Repair]:
        self.reading.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.finished = True
        return []


async def test_close_waits_for_a_repair_running_aside() -> None:
    """A periodic repair reading the fallback when the session closes is stopped and over
    before the stores close: no fallback call is left in flight (a SQLite thread posting
    its answer to a closed event loop, before this)."""
    fallback = StalledFallback()
    session = Session(memory=InProcessRedis(), fallback=fallback, breaker=None)
    await session.repair(wait=False)
    await asyncio.wait_for(fallback.reading.wait(), 1)
    await session.close()
    assert fallback.finished
