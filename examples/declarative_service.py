"""The seed README's service example (seed_service.py), declared as a Model.

The service's cache and circuit breakers are the session's; when Redis is down
the session answers from the fallback.
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
    session = Session(
        memory=InProcessRedis(),
        fallback=DictFallback(),
        cache={"ttl": 60, "max_size": 1000},
        breaker={"fail_max": 5, "reset_timeout": 30},
    )
    people = Person.objects.using(session)
    person = make_person("John Doe", 33)
    await people.add(person)
    print(await people.get(person.id))


asyncio.run(main())
