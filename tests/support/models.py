"""Models the tests share."""

from __future__ import annotations

import datetime
import decimal
import enum

import attrs

from dbdaora import (
    Field,
    GeoMember,
    GeoModel,
    Key,
    Latitude,
    Longitude,
    Model,
    Score,
    SortedMember,
)


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)

    class Meta:
        expire_time = 60


class Follow(Model):
    user: str = Key()
    other: str = Key()
    since: int = Field()


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@attrs.define
class Address:
    street: str
    number: int


class Profile(Model):
    id: int = Key()
    active: bool = Field()
    ratio: float = Field()
    born: datetime.date = Field()
    seen: datetime.datetime = Field()
    balance: decimal.Decimal = Field()
    color: Color = Field()
    tags: list[str] = Field(factory=list)
    extra: dict[str, int] = Field(factory=dict)
    address: Address | None = Field(default=None)
    nick: str | None = Field(default=None)
    avatar: bytes = Field(default=b"")


class Ranking(Model):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()


class Top(Model):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()

    class Meta:
        max_size = 3
        expire_time = None


def sample_profile(**changes: object) -> Profile:
    """A Profile with a value of every supported type; ``changes`` override them."""
    values: dict[str, object] = {
        "id": 7,
        "active": True,
        "ratio": 0.25,
        "born": datetime.date(1990, 5, 17),
        "seen": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "balance": decimal.Decimal("10.10"),
        "color": Color.BLUE,
        "tags": ["a", "ç"],
        "extra": {"x": 1},
        "address": Address("Main", 10),
        "nick": "pro",
        "avatar": b"\x00\xff",
    }
    values.update(changes)
    return Profile(**values)  # type: ignore[arg-type]


class Shop(GeoModel):
    city: str = Key()
    name: str = GeoMember()
    latitude: float = Latitude()
    longitude: float = Longitude()
