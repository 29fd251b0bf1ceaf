"""The geospatial-model contract, run over every stack (Redis side and fallback)."""

from __future__ import annotations

import pytest
import redis

from dbdaora import EntityNotFoundError, Session
from dbdaora.backends import geo
from tests.support.models import Shop
from tests.support.raw import RawView

PLACES = {
    "louvre": (2.3376, 48.8606),
    "eiffel": (2.2945, 48.8584),
    "orsay": (2.3266, 48.8600),
    "versailles": (2.1204, 48.8049),
}
CENTRE = {"longitude": 2.3522, "latitude": 48.8566}  # Hôtel de Ville


def _shop(name: str, city: str = "paris") -> Shop:
    longitude, latitude = PLACES[name]
    return Shop(city=city, name=name, latitude=latitude, longitude=longitude)


async def _seed(session: Session) -> None:
    await Shop.objects.using(session).add(*(_shop(name) for name in PLACES))


async def test_add_writes_a_geo_set_and_one_fallback_record_per_member(
    session: Session, raw: RawView
) -> None:
    """One geo set per key, scores as GEOADD's geohashes, the TTL; the fallback holds each
    member with the coordinates as given."""
    await _seed(session)
    assert dict(raw.zrange(b"shop:paris")) == {
        name.encode(): geo.score(lon, lat) for name, (lon, lat) in PLACES.items()
    }
    if isinstance(raw.client, redis.Redis):
        raw.client.geoadd("check", (*PLACES["louvre"], "louvre"))
        assert raw.client.zscore("check", "louvre") == geo.score(*PLACES["louvre"])
        assert tuple(raw.client.geopos(b"shop:paris", "eiffel")[0]) == geo.position(
            geo.score(*PLACES["eiffel"])
        )
        raw.client.delete("check")
    ttl = raw.ttl(b"shop:paris")
    assert ttl is not None and 3590 < ttl <= 3600
    stored = await session.fallback.get_points(Shop._meta, "paris")
    assert sorted(stored) == sorted((name, lon, lat) for name, (lon, lat) in PLACES.items())


@pytest.mark.parametrize("cold", [False, True], ids=["redis", "read-through"])
async def test_get_answers_every_member_where_redis_keeps_it(
    session: Session, raw: RawView, cold: bool
) -> None:
    """get answers each member at the coordinates GEOPOS gives, from Redis or read through."""
    await _seed(session)
    if cold:
        raw.delete(b"shop:paris")
    shops = await Shop.objects.using(session).get("paris")
    assert {shop.name for shop in shops} == set(PLACES)
    for shop in shops:
        assert (shop.longitude, shop.latitude) == geo.position(geo.score(*PLACES[shop.name]))
        assert shop.city == "paris"
        assert abs(shop.longitude - PLACES[shop.name][0]) < 1e-5
    assert raw.exists(b"shop:paris")


@pytest.mark.parametrize("cold", [False, True], ids=["redis", "read-through"])
@pytest.mark.parametrize(
    ("radius", "unit", "count", "expected"),
    [
        (5, "km", None, ["louvre", "orsay", "eiffel"]),
        (5, "km", 2, ["louvre", "orsay"]),
        (20, "km", None, ["louvre", "orsay", "eiffel", "versailles"]),
        (3000, "m", None, ["louvre", "orsay"]),
        (3, "mi", 1, ["louvre"]),
        (10_000, "ft", None, ["louvre", "orsay"]),
        (100, "m", None, []),
    ],
)
async def test_near_answers_nearest_first_in_the_query_unit(
    session: Session,
    raw: RawView,
    cold: bool,
    radius: float,
    unit: str,
    count: int | None,
    expected: list[str],
) -> None:
    """near is GEOSEARCH ... ASC WITHDIST WITHCOORD, alike from Redis and read through."""
    await _seed(session)
    if cold:
        raw.delete(b"shop:paris")
    found = await Shop.objects.using(session).near(
        "paris", **CENTRE, radius=radius, unit=unit, count=count
    )
    assert [shop.name for shop, _ in found] == expected
    pairs = [(name.encode(), geo.score(*at)) for name, at in PLACES.items()]
    answer = geo.search(pairs, CENTRE["longitude"], CENTRE["latitude"], radius, unit, count)
    assert [(shop.name, distance) for shop, distance in found] == [
        (member.decode(), distance) for member, distance, _ in answer
    ]
    if isinstance(raw.client, redis.Redis) and not cold:
        replied = raw.client.geosearch(
            "shop:paris",
            **CENTRE,
            radius=radius,
            unit=unit,
            sort="ASC",
            count=count,
            withdist=True,
            withcoord=True,
        )
        assert [(shop.name, d, (shop.longitude, shop.latitude)) for shop, d in found] == [
            (member.decode(), distance, tuple(at)) for member, distance, at in replied
        ]


async def test_near_after_flushall_is_read_through_and_refills(
    session: Session, raw: RawView
) -> None:
    """After FLUSHALL, near answers from the fallback and fills the whole set again."""
    await _seed(session)
    shops = Shop.objects.using(session)
    before = await shops.near("paris", **CENTRE, radius=5)
    raw.flushall()
    assert not raw.exists(b"shop:paris")
    assert await shops.near("paris", **CENTRE, radius=5) == before
    assert {member for member, _ in raw.zrange(b"shop:paris")} == {n.encode() for n in PLACES}
    stats = session.stats()["models"]["Shop"]
    assert stats["misses"] == 1 and stats["fallback_reads"] == 1


async def test_remove_and_delete(session: Session, raw: RawView) -> None:
    """remove drops members everywhere; delete drops the set and remembers the miss."""
    await _seed(session)
    shops = Shop.objects.using(session)
    await shops.remove("paris", "eiffel", "versailles")
    assert {member for member, _ in raw.zrange(b"shop:paris")} == {b"louvre", b"orsay"}
    stored = await session.fallback.get_points(Shop._meta, "paris")
    assert sorted(name for name, _, _ in stored) == ["louvre", "orsay"]
    await shops.delete("paris")
    assert not raw.exists(b"shop:paris")
    assert raw.get(b"shop:not-found:paris") is not None
    assert await session.fallback.get_points(Shop._meta, "paris") is None
    with pytest.raises(EntityNotFoundError):
        await shops.near("paris", **CENTRE, radius=5)
    with pytest.raises(EntityNotFoundError):
        await shops.get("paris")
    assert session.stats()["models"]["Shop"]["fallback_reads"] == 0


async def test_a_set_nowhere_is_not_found_and_remembered(session: Session, raw: RawView) -> None:
    """A set neither side holds raises EntityNotFoundError and sets the not-found marker."""
    with pytest.raises(EntityNotFoundError):
        await Shop.objects.using(session).near("rome", **CENTRE, radius=5)
    assert raw.get(b"shop:not-found:rome") is not None


async def test_moving_a_member_and_adding_to_another_set(session: Session, raw: RawView) -> None:
    """Adding a member again moves it; sets under other keys are apart."""
    await _seed(session)
    shops = Shop.objects.using(session)
    await shops.add(
        Shop(city="paris", name="eiffel", latitude=48.0, longitude=2.0), _shop("louvre", "lyon")
    )
    found = {shop.name: shop for shop in await shops.get("paris")}
    assert (found["eiffel"].longitude, found["eiffel"].latitude) == geo.position(
        geo.score(2.0, 48.0)
    )
    assert [shop.name for shop in await shops.get("lyon")] == ["louvre"]
