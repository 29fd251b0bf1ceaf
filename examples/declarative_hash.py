"""The seed README's hash example (seed_hash.py), declared as a Model.

The same data: the entity is the Redis hash ``person:john_doe`` with a 60 s TTL
and a fallback record, as PersonRepository writes it.
"""

import asyncio

from dbdaora import Field, Key, Model, Session
from dbdaora.backends import DictFallback, InProcessRedis


class Person(Model):
    id: str = Key()
    name: str = Field()
    age: int = Field()

    class Meta:
        expire_time = 60


def make_person(name: str, age: int) -> Person:
    return Person(id=name.replace(" ", "_").lower(), name=name, age=age)


async def main() -> None:
    people = Person.objects.using(Session(memory=InProcessRedis(), fallback=DictFallback()))
    person = make_person("John Doe", 33)
    await people.add(person)
    print(await people.get(person.id))


asyncio.run(main())
