"""0.27-style entities and repositories the legacy tests share."""

from __future__ import annotations

from dataclasses import dataclass, field

from dbdaora import (
    BooleanRepository,
    DatastoreBooleanRepository,
    HashRepository,
    SortedSetEntity,
    SortedSetRepository,
)


@dataclass
class Person:
    id: str
    name: str
    age: int


class PersonRepository(HashRepository[Person, str]):
    key_attrs = ("id",)


@dataclass
class Profile:
    id: str
    name: str
    score: float
    active: bool
    tags: list[str] = field(default_factory=list)
    extra: dict[str, int] = field(default_factory=dict)
    nick: str | None = None


class ProfileRepository(HashRepository[Profile, str]): ...


@dataclass
class Follow:
    user: str
    other: str
    since: int


class FollowRepository(HashRepository[Follow, str]):
    key_attrs = ("user", "other")


class Playlist(SortedSetEntity):
    id: str


class PlaylistRepository(SortedSetRepository[Playlist, str]): ...


class UserPlaylist(SortedSetEntity):
    user: str
    id: str


class UserPlaylistRepository(SortedSetRepository[UserPlaylist, str]):
    key_attrs = ("user", "id")


@dataclass
class Fake:
    id: str


class FakeRepository(BooleanRepository[Fake, str]):
    name = "fake"


@dataclass
class PairFake:
    id: str
    other_id: str


class PairFakeRepository(DatastoreBooleanRepository, entity_cls=PairFake):  # type: ignore[type-arg] # 0.27's spelling: the entity by keyword
    name = "fake"
    key_attrs = ("other_id", "id")


@dataclass
class Seen:
    user: str
    item: str


class SeenRepository(BooleanRepository[Seen, str]):
    key_attrs = ("user", "item")


@dataclass
class Liked:
    id: str


class LikedRepository(BooleanRepository[Liked, str]): ...
