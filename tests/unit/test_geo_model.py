"""Geospatial models on memory://: the session cache, Redis outages, repair records and
data Redis refuses, as for the other data types."""

from __future__ import annotations

from dbdaora import Session
from dbdaora.backends import DictFallback, InProcessRedis
from tests.support.models import Shop

CENTRE = {"latitude": 48.8566, "longitude": 2.3522}
LOUVRE = Shop(city="paris", name="louvre", latitude=48.8606, longitude=2.3376)
EIFFEL = Shop(city="paris", name="eiffel", latitude=48.8584, longitude=2.2945)
KEYS = {b"shop:paris", b"shop:not-found:paris"}


async def test_the_session_cache_answers_again_until_a_write() -> None:
    """A near or get answered once is answered from the cache, per query; a write of the
    set drops its cached answers, so the next read sees it."""
    async with Session(
        memory="memory://", fallback="memory://", cache={"ttl": 60, "max_size": 100}
    ) as session:
        shops = Shop.objects.using(session)
        await shops.add(LOUVRE)
        first = await shops.near("paris", **CENTRE, radius=5)
        assert await shops.near("paris", **CENTRE, radius=5) == first
        assert await shops.near("paris", **CENTRE, radius=5, unit="mi") != first
        first[0][0].name = "changed by the caller"
        assert (await shops.near("paris", **CENTRE, radius=5))[0][0].name == "louvre"
        assert session.stats()["models"]["Shop"]["cache_hits"] == 2
        await shops.add(EIFFEL)
        assert [s.name for s, _ in await shops.near("paris", **CENTRE, radius=5)] == [
            "louvre",
            "eiffel",
        ]
        await shops.delete("paris")
        assert session.stats()["models"]["Shop"]["fallback_reads"] == 0


async def test_with_redis_down_the_fallback_answers_and_writes_are_repaired() -> None:
    """Redis unavailable: near and get answer from the fallback (errors counted, nothing
    filled); an add still succeeds and records its keys for repair; once Redis is back,
    another session's first call repairs them, and it reads the new member."""
    store, fallback = InProcessRedis(), DictFallback()
    async with (
        Session(memory=store, fallback=fallback, breaker=None) as writer,
        Session(memory=store, fallback=fallback, breaker=None) as reader,
    ):
        await Shop.objects.using(writer).add(LOUVRE)
        await Shop.objects.using(writer).get("paris")
        store.down = True
        await Shop.objects.using(writer).add(EIFFEL)
        assert set(fallback.repair_records) == KEYS
        found = await Shop.objects.using(writer).near("paris", **CENTRE, radius=5)
        assert [s.name for s, _ in found] == ["louvre", "eiffel"]
        stats = writer.stats()["models"]["Shop"]
        assert stats["errors"] >= 2 and stats["fallback_reads"] == 1
        store.down = False
        assert {s.name for s in await Shop.objects.using(reader).get("paris")} == {
            "louvre",
            "eiffel",
        }
        assert fallback.repair_records == {}


async def test_a_key_of_another_type_is_replaced_by_a_read_through() -> None:
    """A string where the geo set belongs: near reads the fallback and fills the set."""
    store = InProcessRedis()
    async with Session(memory=store, fallback="memory://") as session:
        shops = Shop.objects.using(session)
        await shops.add(LOUVRE, EIFFEL)
        store._set(b"shop:paris", b"not a set", None)
        found = await shops.near("paris", **CENTRE, radius=5, count=1)
        assert [s.name for s, _ in found] == ["louvre"]
        assert isinstance(store.raw(b"shop:paris"), dict)
        assert len(store.raw(b"shop:paris")) == 2
