"""Models the tests share."""

from __future__ import annotations

import datetime
import decimal
import enum

import attrs

from dbdaora import Field, Key, Model, Score, SortedMember


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
