"""The seed README's examples run unchanged and print what it shows; so do their declarative
counterparts; and the 0.27 API survives asyncio.run called again and again on a real Redis."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis

from dbdaora import (
    CacheType,
    DictFallbackDataSource,
    make_hash_service,
    make_redis_data_source,
    make_sorted_set_service,
)
from tests.support.legacy_entities import Person, PersonRepository, Playlist, PlaylistRepository
from tests.support.servers import RedisServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PERSON = "Person(id='john_doe', name='John Doe', age=33)\n"


@pytest.mark.parametrize(
    ("example", "output"),
    [
        ("seed_hash.py", PERSON),
        (
            "seed_sorted_set.py",
            "Playlist(id='my_plalist', data=[b'm1', b'm2', b'm3'], max_size=None)\n",
        ),
        ("seed_service.py", PERSON),
        ("declarative_hash.py", PERSON),
        ("declarative_sorted_set.py", "['m1', 'm2', 'm3']\n"),
        ("declarative_service.py", PERSON),
    ],
)
def test_example_prints_exactly(example: str, output: str, tmp_path: Path) -> None:
    """The example runs as a script, warnings as errors, and prints exactly this."""
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / example)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == output


async def _collect(entities: AsyncIterator[Any]) -> list[Any]:
    return [entity async for entity in entities]


def test_repository_across_event_loops(redis_proc: RedisServer, raw_redis: redis.Redis) -> None:
    """A repository on redis:// works from one asyncio.run to the next, as the README uses it."""
    source = asyncio.run(make_redis_data_source(redis_proc.url))
    people = PersonRepository(
        memory_data_source=source, fallback_data_source=DictFallbackDataSource(), expire_time=60
    )
    asyncio.run(people.add(Person("a", "Ann", 1)))
    assert asyncio.run(people.query("a").entity) == Person("a", "Ann", 1)
    assert asyncio.run(people.query("a").exists) is True
    assert asyncio.run(_collect(people.query(many=["a", "b"]).entities)) == [Person("a", "Ann", 1)]
    asyncio.run(people.query("a").delete)
    assert asyncio.run(people.query("a").exists) is False
    assert raw_redis.get(b"person:not-found:a") == b"1"


def test_services_across_event_loops(redis_proc: RedisServer, raw_redis: redis.Redis) -> None:
    """Services with a cache and breakers on redis:// work from one asyncio.run to the next."""

    async def memory() -> Any:
        return await make_redis_data_source(redis_proc.url)

    async def fallback() -> DictFallbackDataSource:
        return DictFallbackDataSource()

    options: dict[str, Any] = {
        "memory_data_source_factory": memory,
        "fallback_data_source_factory": fallback,
        "repository_expire_time": 60,
        "cache_type": CacheType.LFU,
        "cache_max_size": 10,
        "cache_ttl": 60,
        "cb_failure_threshold": 3,
    }
    people = asyncio.run(make_hash_service(PersonRepository, **options))
    playlists = asyncio.run(make_sorted_set_service(PlaylistRepository, **options))
    for round_ in range(3):
        asyncio.run(people.add(Person("a", "Ann", round_)))
        assert asyncio.run(people.get_one("a")) == Person("a", "Ann", round_)
        assert asyncio.run(people.get_one("a")) == Person("a", "Ann", round_)
        assert asyncio.run(_collect(people.get_many("a", "zed"))) == [Person("a", "Ann", round_)]
        asyncio.run(playlists.add(Playlist(id="p", data=[("m", round_)])))
        assert asyncio.run(playlists.get_one("p", withscores=True)).data == [(b"m", round_)]
    assert raw_redis.hget(b"person:a", b"age") == b"2"
    assert people.stats()["breakers"]["memory"] == "closed"
    assert people.stats()["models"]["Person"]["cache_hits"] >= 3
