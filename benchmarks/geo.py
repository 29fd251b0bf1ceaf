"""``near`` on a geospatial model against hand-written redis-py GEOSEARCH (issue 19).

Run: .venv/bin/python -m benchmarks.geo   [--rounds 7] [--scale 1.0]  (starts its own
private redis-server)

One geo set of 10,000 members spread over a 1° square around Paris (about 110 km
by 75 km), written once by ``Shop.objects.add``. Each query asks for the 10 nearest
within 20 km of a centre, the centres cycling through 100 points of the square.

``near``
    ``Shop.objects.near(city, latitude=, longitude=, radius=20, count=10)`` on a
    session with no cache (GEOSEARCH ... ASC COUNT 10 WITHDIST WITHCOORD, then 10
    Shops copied out) | ``redis.asyncio`` ``geosearch(...)`` with the same
    options, then 10 slotted HandShops built from the reply.

Both sides take turns query by query; a round's figure is the median time per
query, the table shows the median over the rounds and ratio = ORM / hand.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import random
import statistics
import time
from typing import Any

import redis.asyncio

from dbdaora import GeoMember, GeoModel, Key, Latitude, Longitude, Session
from dbdaora.backends import DictFallback
from tests.support.servers import redis_server

MEMBERS = 10_000
QUERIES = 2_000
CENTRES = 100
TARGET = 1.15  # as a get from Redis (benchmarks.speed)


class Shop(GeoModel):
    city: str = Key()
    name: str = GeoMember()
    latitude: float = Latitude()
    longitude: float = Longitude()


@dataclasses.dataclass(slots=True)
class HandShop:
    city: str
    name: str
    latitude: float
    longitude: float
    distance: float


def _points(count: int, seed: int) -> list[tuple[float, float]]:
    rnd = random.Random(seed)
    return [(rnd.uniform(1.85, 2.85), rnd.uniform(48.35, 49.35)) for _ in range(count)]


async def _orm(session: Session, centre: tuple[float, float]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    found = await Shop.objects.using(session).near(
        "paris", latitude=centre[1], longitude=centre[0], radius=20, count=10
    )
    elapsed = time.perf_counter() - started
    return elapsed, [shop.name for shop, _ in found]


async def _hand(client: Any, centre: tuple[float, float]) -> tuple[float, list[str]]:
    started = time.perf_counter()
    key = "shop:" + "paris"
    reply = await client.geosearch(
        key,
        longitude=centre[0],
        latitude=centre[1],
        radius=20,
        unit="km",
        sort="ASC",
        count=10,
        withdist=True,
        withcoord=True,
    )
    shops = [
        HandShop("paris", member.decode(), lat, lon, distance)
        for member, distance, (lon, lat) in reply
    ]
    elapsed = time.perf_counter() - started
    return elapsed, [shop.name for shop in shops]


async def run(url: str, rounds: int, scale: float) -> dict[str, float]:
    members = max(int(MEMBERS * scale), 200)
    queries = max(int(QUERIES * scale), 20)
    centres = _points(CENTRES, 2)
    async with (
        redis.asyncio.Redis.from_url(url) as client,
        Session(memory=url, fallback=DictFallback(), memory_timeout=None) as session,
    ):
        shops = [
            Shop(city="paris", name=f"s{i}", latitude=lat, longitude=lon)
            for i, (lon, lat) in enumerate(_points(members, 1))
        ]
        for i in range(0, len(shops), 1000):
            await Shop.objects.using(session).add(*shops[i : i + 1000])
        orm_rounds, hand_rounds = [], []
        for round_ in range(rounds + 1):
            gc.collect()
            orm_times, hand_times = [], []
            for i in range(queries):
                centre = centres[i % CENTRES]
                orm_time, orm_found = await _orm(session, centre)
                hand_time, hand_found = await _hand(client, centre)
                assert orm_found == hand_found
                orm_times.append(orm_time)
                hand_times.append(hand_time)
            if round_:  # the first round warms up
                orm_rounds.append(statistics.median(orm_times))
                hand_rounds.append(statistics.median(hand_times))
        assert session.stats()["models"]["Shop"]["errors"] == 0
    orm, hand = statistics.median(orm_rounds), statistics.median(hand_rounds)
    print(f"near 10 of {members:,} members, {rounds} rounds of {queries:,} queries")
    print(f"{'operation':<10} {'ORM median':>12} {'hand median':>12} {'ratio':>7} {'target':>7}")
    print(f"{'near':<10} {orm * 1e6:>9.1f} us {hand * 1e6:>9.1f} us {orm / hand:>7.2f} {TARGET:>7}")
    return {"orm": orm, "hand": hand}


def main(rounds: int = 7, scale: float = 1.0) -> dict[str, float]:
    with redis_server() as server:
        return asyncio.run(run(server.url, rounds, scale))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--scale", type=float, default=1.0)
    arguments = parser.parse_args()
    main(arguments.rounds, arguments.scale)
