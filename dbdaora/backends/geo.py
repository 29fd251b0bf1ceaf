"""Redis's geospatial rules: the 52-bit geohash score, its decoding, distances, GEOSEARCH.

A Redis geo set is a sorted set whose scores are GEOADD's geohashes: the
coordinates, quantised to a 2^26 grid each, bits interleaved. The in-process
store answers GEOSEARCH with these, and the geospatial manager answers a query
from freshly read fallback data with them, so both agree with Redis
(``src/geohash.c``, ``src/geohash_helper.c``, ``src/geo.c``) to the last bit:
the same coordinates, the same haversine on the same earth radius, the same
``%.4f`` distances.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

LATITUDE_LIMIT = 85.05112878
LONGITUDE_LIMIT = 180.0
EARTH_RADIUS_METERS = 6372797.560856
STEP = 26  # bits per coordinate: a 52-bit score
UNITS = {"m": 1.0, "km": 1000.0, "mi": 1609.34, "ft": 0.3048}
"""GEOSEARCH's units, each in meters."""

Point = tuple[float, float]
"""A longitude and a latitude, in degrees."""

Found = tuple[bytes, float, Point]
"""A GEOSEARCH answer: a member, its distance in the query's unit, its coordinates."""

_SPREAD = (
    (16, 0x0000FFFF0000FFFF),
    (8, 0x00FF00FF00FF00FF),
    (4, 0x0F0F0F0F0F0F0F0F),
    (2, 0x3333333333333333),
    (1, 0x5555555555555555),
)
_SQUASH = (
    (0, 0x5555555555555555),
    (1, 0x3333333333333333),
    (2, 0x0F0F0F0F0F0F0F0F),
    (4, 0x00FF00FF00FF00FF),
    (8, 0x0000FFFF0000FFFF),
    (16, 0x00000000FFFFFFFF),
)
_DEG_RAD = math.pi / 180.0


def in_range(longitude: float, latitude: float) -> bool:
    """Whether GEOADD takes the pair (Web Mercator's latitudes, EPSG:3857)."""
    return -LONGITUDE_LIMIT <= longitude <= LONGITUDE_LIMIT and (
        -LATITUDE_LIMIT <= latitude <= LATITUDE_LIMIT
    )


def _spread(value: int) -> int:
    """The low 32 bits of ``value`` moved to the even bits of a 64-bit word."""
    for shift, mask in _SPREAD:
        value = (value | (value << shift)) & mask
    return value


def _squash(value: int) -> int:
    """The even bits of a 64-bit word packed into its low 32 bits: ``_spread`` undone."""
    for shift, mask in _SQUASH:
        value = (value | (value >> shift)) & mask
    return value


def score(longitude: float, latitude: float) -> float:
    """GEOADD's score of a pair already checked with ``in_range``."""
    cells = 1 << STEP
    lat = int((latitude + LATITUDE_LIMIT) / (2 * LATITUDE_LIMIT) * cells) & 0xFFFFFFFF
    lon = int((longitude + LONGITUDE_LIMIT) / (2 * LONGITUDE_LIMIT) * cells) & 0xFFFFFFFF
    return float(_spread(lat) | (_spread(lon) << 1))


def _centre(geohash: float) -> Point:
    """The coordinates a score stands for: its cell's centre, clamped."""
    bits = int(geohash)
    cells = float(1 << STEP)
    lat, lon = _squash(bits), _squash(bits >> 1)
    lat_span, lon_span = 2 * LATITUDE_LIMIT, 2 * LONGITUDE_LIMIT
    lat_min = -LATITUDE_LIMIT + (lat * 1.0 / cells) * lat_span
    lat_max = -LATITUDE_LIMIT + ((lat + 1) * 1.0 / cells) * lat_span
    lon_min = -LONGITUDE_LIMIT + (lon * 1.0 / cells) * lon_span
    lon_max = -LONGITUDE_LIMIT + ((lon + 1) * 1.0 / cells) * lon_span
    longitude = min(max((lon_min + lon_max) / 2, -LONGITUDE_LIMIT), LONGITUDE_LIMIT)
    latitude = min(max((lat_min + lat_max) / 2, -LATITUDE_LIMIT), LATITUDE_LIMIT)
    return longitude, latitude


def position(geohash: float) -> Point:
    """The coordinates GEOPOS (and GEOSEARCH's WITHCOORD) answers for a score."""
    return _replied(_centre(geohash))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Meters between two points: Redis's haversine, with its shortcut on one meridian."""
    v = math.sin((lon2 * _DEG_RAD - lon1 * _DEG_RAD) / 2)
    if v == 0.0:
        return EARTH_RADIUS_METERS * abs(lat2 * _DEG_RAD - lat1 * _DEG_RAD)
    lat1r, lat2r = lat1 * _DEG_RAD, lat2 * _DEG_RAD
    u = math.sin((lat2r - lat1r) / 2)
    a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_METERS * math.asin(math.sqrt(a))


def search(
    members: Iterable[tuple[bytes, float]],
    longitude: float,
    latitude: float,
    radius: float,
    unit: str,
    count: int | None,
) -> list[Found]:
    """GEOSEARCH ... FROMLONLAT BYRADIUS ASC [COUNT] WITHDIST WITHCOORD over (member,
    score) pairs: the members within ``radius``, nearest first (ties by member).

    Every member within the radius is found; Redis's search of geohash cells
    can miss one stored at the very latitude limit (±85.05112878).
    """
    meters = UNITS[unit]
    limit = radius * meters
    inside = []
    for member, geohash in members:
        lon, lat = _centre(geohash)
        meters_away = distance(longitude, latitude, lon, lat)
        if meters_away <= limit:
            inside.append((meters_away, member, (lon, lat)))
    inside.sort(key=lambda found: (found[0], found[1]))
    if count is not None:
        del inside[count:]
    return [(member, float(f"{away / meters:.4f}"), _replied(at)) for away, member, at in inside]


def _replied(at: Point) -> Point:
    """Coordinates as GEOSEARCH's WITHCOORD writes them: 17 decimal places."""
    return float(f"{at[0]:.17f}"), float(f"{at[1]:.17f}")
