"""dbdaora's quick start: declare models, write, read, rank — on the embedded default.

Nothing is configured, so both the Redis side and the durable fallback are
``memory://`` and no server is needed. Point ``dbdaora.configure(memory=...,
fallback=...)`` at real ones and the same code runs against them.
"""

import asyncio

from dbdaora import EntityNotFoundError, Field, Key, Model, Score, SortedMember


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field(default=0)

    class Meta:
        expire_time = 60


class Ranking(Model):
    board: str = Key()
    player: str = SortedMember()
    points: float = Score()


async def main() -> None:
    await Person.objects.add(Person(id="john_doe", name="John Doe", age=33))
    print("added:", await Person.objects.get("john_doe"))
    print("name only:", await Person.objects.get("john_doe", fields=["name"]))
    print("exists:", await Person.objects.exists("john_doe"))

    await Person.objects.delete("john_doe")
    try:
        await Person.objects.get("john_doe")
    except EntityNotFoundError as error:
        print("after delete:", error)

    await Ranking.objects.add(
        Ranking(board="weekly", player="ann", points=10),
        Ranking(board="weekly", player="bob", points=7),
        Ranking(board="weekly", player="cid", points=12),
    )
    top = await Ranking.objects.range("weekly", 0, 1, reverse=True)
    print("top two:", ", ".join(f"{r.player} ({r.points:g})" for r in top))


if __name__ == "__main__":
    asyncio.run(main())
