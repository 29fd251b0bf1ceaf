"""dbdaora's quick start: declare models, write, read, rank, and find it all again next run.

The Redis side is ``memory://`` (in-process, no server); the durable fallback is
a SQLite file, ``quickstart.db`` in the current directory (or the path in
``DBDAORA_QUICKSTART_DB``). Run it twice: the second run reads back, through the
fallback, what the first one stored. Point ``dbdaora.configure(memory=...,
fallback=...)`` at real servers and the same code runs against them.
"""

import asyncio
import os

import dbdaora
from dbdaora import EntityNotFoundError, Field, Key, Model, Score, SortedMember, SortedSetModel


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)

    class Meta:
        expire_time = 60


class Ranking(SortedSetModel):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()


def players(rankings: list[Ranking]) -> str:
    return ", ".join(f"{r.player} ({r.points:g})" for r in rankings)


async def main() -> None:
    try:
        ann = await Person.objects.get("ann")
        top = await Ranking.objects.range("weekly", 0, 1, reverse=True)
        print(f"found from an earlier run: {ann}, top two: {players(top)}")
    except EntityNotFoundError:
        print("nothing stored by an earlier run yet")

    await Person.objects.add(Person(id="john_doe", name="John Doe", age=33))
    print("added:", await Person.objects.get("john_doe"))
    print("name only:", await Person.objects.get("john_doe", fields=["name"]))
    print("exists:", await Person.objects.exists("john_doe"))

    await Person.objects.delete("john_doe")
    try:
        await Person.objects.get("john_doe")
    except EntityNotFoundError as error:
        print("after delete:", error)

    await Person.objects.add(Person(id="ann", name="Ann", age=41))
    await Ranking.objects.add(
        Ranking(board="weekly", player="ann", points=10),
        Ranking(board="weekly", player="bob", points=7),
        Ranking(board="weekly", player="cid", points=12),
    )
    print("kept for the next run:", await Person.objects.get("ann"))
    top = await Ranking.objects.range("weekly", 0, 1, reverse=True)
    print("top two:", players(top))


if __name__ == "__main__":
    path = os.environ.get("DBDAORA_QUICKSTART_DB", "quickstart.db")
    dbdaora.configure(memory="memory://", fallback=f"sqlite+aiosqlite:///{path}")
    asyncio.run(main())
