"""Failed Datastore writes: each commit of a batch is known written, refused or unknown."""

from __future__ import annotations

import pytest
import redis

from dbdaora import BackendError, OutcomeUnknownError, Session
from dbdaora.backends.fallback.datastore.store import COMMIT_LIMIT, DatastoreFallback
from dbdaora.backends.redis.single import RedisStore
from tests.support.datastore_server import DatastoreEmulator
from tests.support.models import Person
from tests.support.servers import RedisServer


def _name(raw_redis: redis.Redis, id_: str) -> bytes | None:
    return raw_redis.hget(f"person:{id_}", "name")  # type: ignore[return-value]


async def test_batch_part_committed_part_refused(
    datastore_fallback: DatastoreFallback, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """One commit of a batch refused: its records keep their Redis copies, the committed
    ones are written to Redis, nothing is evicted."""
    ids = [f"d{i}" for i in range(COMMIT_LIMIT + 1)]
    async with Session(memory=RedisStore(redis_proc.url), fallback=datastore_fallback) as session:
        people = Person.objects.using(session)
        await people.add(*(Person(id=id_, name="Old") for id_ in ids))
        # The second commit holds the last id and a reserved key name the server refuses.
        newer = [Person(id=id_, name="New") for id_ in ids] + [Person(id="__x__", name="New")]
        with pytest.raises(BackendError, match="reserved") as error:
            await people.add(*newer)
        assert not isinstance(error.value, OutcomeUnknownError)
        assert error.value.written == set(ids[:COMMIT_LIMIT])
        assert error.value.unknown == frozenset()
        held = await datastore_fallback.get_many(Person._meta, ids)
        assert [p.name for p in held] == ["New"] * COMMIT_LIMIT + ["Old"]
        assert [_name(raw_redis, id_) for id_ in ids] == [b"New"] * COMMIT_LIMIT + [b"Old"]
        assert not raw_redis.exists("person:__x__")
        assert [p.name for p in await people.get_many(ids)] == [p.name for p in held]


async def test_unanswered_commit_evicts(
    datastore_proc: DatastoreEmulator, redis_proc: RedisServer, raw_redis: redis.Redis
) -> None:
    """Emulator frozen mid-commit: OutcomeUnknownError, the Redis copy is deleted, and once
    it answers again the read returns what Datastore holds."""
    datastore_proc.reset()
    fallback = DatastoreFallback(datastore_proc.url("unanswered", timeout=1))
    async with Session(
        memory=RedisStore(redis_proc.url), fallback=fallback, breaker=None
    ) as session:
        people = Person.objects.using(session)
        await people.add(Person(id="u1", name="Old"), Person(id="u2", name="Kept"))
        datastore_proc.pause()
        try:
            with pytest.raises(OutcomeUnknownError) as error:
                await people.add(Person(id="u1", name="New"))
            assert error.value.unknown == {"u1"} and error.value.__cause__ is not None
            assert not raw_redis.exists("person:u1")
            assert _name(raw_redis, "u2") == b"Kept"
        finally:
            datastore_proc.resume()
        (held,) = await fallback.get_many(Person._meta, ["u1"])
        assert held is not None and held.name in ("Old", "New")
        assert await people.get("u1") == held
