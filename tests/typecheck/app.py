# pyright: strict
"""A small application as users write it, for the type checkers (``test_typecheck.py``).

A line ending in ``# revealed: T`` reveals ``T`` under both mypy --strict and
pyright strict (mypy's module paths left out). The line after a comment
``# mypy: codes | pyright: rules`` raises exactly those errors; no other line
raises any. ``tour`` and ``legacy`` also run, each reveal printing the runtime type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, TypeVar, reveal_type

from dbdaora import (
    DictFallbackDataSource,
    DictMemoryDataSource,
    Field,
    GeoMember,
    GeoModel,
    HashRepository,
    Key,
    Latitude,
    Longitude,
    Model,
    Score,
    Session,
    SortedMember,
    SortedSetModel,
)

M = TypeVar("M", bound=Model)


class Customer(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)
    tags: list[str] = Field(factory=list)
    nick: str | None = None
    PAGE: ClassVar[int] = 20  # a class attribute, not a field


class Visit(Model):
    shop: str = Key()
    day: int = Key()
    count: int = Field(default=0)


class Leaderboard(SortedSetModel):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()


class Store(GeoModel):
    city: str = Key()
    name: str = GeoMember()
    latitude: float = Latitude()
    longitude: float = Longitude()


async def load(model: type[M], key: str, session: Session) -> M:
    """Any hash model's entity, typed as that model."""
    return await model.objects.using(session).get(key)


async def tour(session: Session) -> None:
    """Every manager method once, on ``session``; each reveal is checked."""
    customers = Customer.objects.using(session)
    reveal_type(customers)  # revealed: HashManager[Customer]
    await customers.add(Customer(id="ann", name="Ann", age=41), Customer(id="bob", name="Bob"))
    reveal_type(await customers.get("ann"))  # revealed: Customer
    reveal_type(await customers.get("ann", fields=["name"]))  # revealed: Customer
    reveal_type(await customers.get_many(["ann", "bob"]))  # revealed: list[Customer]
    reveal_type(await customers.exists("ann"))  # revealed: bool
    reveal_type(await load(Customer, "bob", session))  # revealed: Customer
    ann = await customers.get("ann")
    reveal_type(ann.age)  # revealed: int
    reveal_type(ann.nick)  # revealed: str | None
    await customers.delete("bob")

    visits = Visit.objects.using(session)
    await visits.add(Visit(shop="s1", day=3, count=9))
    reveal_type(await visits.get("s1", 3))  # revealed: Visit
    reveal_type(await visits.get_many([("s1", 3)]))  # revealed: list[Visit]

    boards = Leaderboard.objects.using(session)
    reveal_type(boards)  # revealed: SortedSetManager[Leaderboard]
    await boards.add(
        Leaderboard(board="b1", player="ann", points=10),
        Leaderboard(board="b1", player="bob", points=7.5),
    )
    reveal_type(await boards.get("b1"))  # revealed: list[Leaderboard]
    reveal_type(await boards.range("b1", 0, 0, reverse=True))  # revealed: list[Leaderboard]
    top = await boards.range_by_score("b1", min=5, max=10, count=1)
    reveal_type(top)  # revealed: list[Leaderboard]
    reveal_type(top[0].points)  # revealed: float
    reveal_type(await boards.count("b1"))  # revealed: int
    await boards.replace("b1", members=[("cid", 3.0)])
    await boards.remove("b1", "cid")
    await boards.delete("b1")

    stores = Store.objects.using(session)
    reveal_type(stores)  # revealed: GeoManager[Store]
    await stores.add(Store(city="paris", name="louvre", latitude=48.86, longitude=2.34))
    reveal_type(await stores.get("paris"))  # revealed: list[Store]
    nearby = await stores.near("paris", latitude=48.85, longitude=2.35, radius=5, count=1)
    reveal_type(nearby)  # revealed: list[tuple[Store, float]]
    reveal_type(nearby[0][0].latitude)  # revealed: float
    await stores.remove("paris", "louvre")
    await stores.delete("paris")


@dataclass
class Account:
    id: str
    owner: str


class AccountRepository(HashRepository[Account, str]):
    key_attrs = ("id",)


async def legacy() -> None:
    """The 0.27 repository API keeps its own generic types."""
    repository = AccountRepository(
        memory_data_source=DictMemoryDataSource(),
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )
    await repository.add(Account(id="a1", owner="ann"))
    reveal_type(await repository.query("a1").entity)  # revealed: Account
    await repository.close()


async def mistakes() -> None:
    """What the checkers catch; never run."""
    # mypy: attr-defined | pyright: reportAttributeAccessIssue, reportUnknownMemberType
    await Customer.objects.gett("ann")
    # mypy: arg-type | pyright: reportArgumentType
    await Customer.objects.add(Leaderboard(board="b1", player="ann", points=1))
    # mypy: arg-type | pyright: reportArgumentType
    await Leaderboard.objects.add(Customer(id="ann", name="Ann"))
    # mypy: attr-defined | pyright: reportAttributeAccessIssue, reportUnknownMemberType
    await Customer.objects.range("ann")
    # mypy: attr-defined | pyright: reportAttributeAccessIssue, reportUnknownMemberType
    await Leaderboard.objects.get_many(["b1"])
    # mypy: arg-type | pyright: reportArgumentType
    await Store.objects.add(Leaderboard(board="b1", player="ann", points=1))
    # mypy: attr-defined | pyright: reportAttributeAccessIssue, reportUnknownMemberType
    await Store.objects.range("paris")
    # mypy: arg-type | pyright: reportArgumentType
    Store(city="paris", name="louvre", latitude="north", longitude=2.34)
    # mypy: arg-type | pyright: reportArgumentType
    Customer(id=1, name="Ann")
    # mypy: call-arg | pyright: reportCallIssue
    Customer(id="ann", idd="x", name="Ann")
    # mypy: call-arg | pyright: reportCallIssue
    Customer(id="ann")
    # mypy: call-arg | pyright: reportCallIssue
    Customer("ann", "Ann")
    # mypy: arg-type | pyright: reportArgumentType
    Leaderboard(board="b1", player="ann", points="ten")
    # mypy: assignment | pyright: reportAttributeAccessIssue
    Customer(id="ann", name="Ann").age = "old"
    # mypy: call-overload | pyright: reportAttributeAccessIssue, reportUnknownMemberType
    Customer(id="ann", name="Ann").objects  # noqa: B018 - the access is the mistake
    # mypy: assignment | pyright: reportAssignmentType
    name: int = (await Customer.objects.get("ann")).name
    print(name)
