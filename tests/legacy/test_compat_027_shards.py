"""Sharded Redis compatible with dbdaora 0.27, both ways, on three private redis-servers.

0.27's ``make_aioredis_data_source(*uris)`` spread keys over the servers with its hash
ring; this library's, given the same URIs in the same order, finds every key where
0.27 put it, and puts its own where 0.27 looks. Real 0.27 runs in its own
virtualenv through tests/support/compat027_driver.py, as in test_compat_027.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dbdaora import DictFallbackDataSource, EntityNotFoundError, make_aioredis_data_source
from tests.legacy.test_compat_027 import FOLLOW, MEMBERS, PROFILE, _plain, drive_027, python_027
from tests.support.legacy_entities import (
    FollowRepository,
    Liked,
    LikedRepository,
    Playlist,
    PlaylistRepository,
    ProfileRepository,
)
from tests.support.shards import SHARDS, ShardedClient, ShardedServers, ring_index

pytestmark = pytest.mark.compat

__all__ = ["python_027"]  # the fixture, shared with test_compat_027.py


def _run_027(python: Path, urls: list[str], ops: list[Any], cwd: Path) -> list[Any]:
    """Run operations on 0.27 over the shards (its dict fallback); their results."""
    return drive_027(python, {"urls": urls, "fallback": "dict", "ops": ops}, cwd)


def _placed(raw: ShardedClient) -> dict[bytes, int]:
    """Each key of the shards, with the index of the server holding it, but dbdaora's own
    bookkeeping (``dbdaora:epoch``, of which every server keeps a copy)."""
    return {
        key: i
        for i, client in enumerate(raw.clients)
        for key in client.keys("*")
        if not key.startswith(b"dbdaora:")
    }


async def _repositories(urls: list[str]) -> list[Any]:
    memory = await make_aioredis_data_source(*urls)
    fallback = DictFallbackDataSource()
    return [
        cls(memory_data_source=memory, fallback_data_source=fallback, expire_time=60)
        for cls in (ProfileRepository, FollowRepository, PlaylistRepository, LikedRepository)
    ]


async def test_what_027_writes_on_shards_this_library_reads(
    python_027: Path, shards_proc: ShardedServers, raw_shards: ShardedClient, tmp_path: Path
) -> None:
    """0.27's hashes, sorted set, flags and not-found markers, spread by its ring, read as
    the same entities here from Redis alone (this library's fallback is never asked)."""
    others = [dict(_plain(PROFILE), id=f"q{i}") for i in range(9)]
    _run_027(
        python_027,
        shards_proc.urls,
        [
            ["add", "profile", _plain(PROFILE)],
            *(["add", "profile", other] for other in others),
            ["add", "follow", _plain(FOLLOW)],
            ["add", "playlist", {"id": "pl", "data": MEMBERS}],
            ["add", "liked", {"id": "x"}],
            ["get", "profile", ["ghost"], {}],
        ],
        tmp_path,
    )
    placed = _placed(raw_shards)
    assert b"profile:not-found:ghost" in placed and b"liked:x" in placed
    assert len(placed) == 14
    assert all(index == ring_index(key, SHARDS) for key, index in placed.items())
    assert len(set(placed.values())) == SHARDS
    profiles, follows, playlists, liked = await _repositories(shards_proc.urls)
    assert await profiles.query("p1").entity == PROFILE
    for other in others:
        assert _plain(await profiles.query(other["id"]).entity) == other
    assert await follows.query("ann", "bob").entity == FOLLOW
    assert await playlists.query("pl", withscores=True).entity == Playlist(
        id="pl", data=[(b"m1", 1.0), (b"m2", 2.5), (b"m3", 4.0)]
    )
    assert await liked.query("x").entity == "x"
    with pytest.raises(EntityNotFoundError):
        await profiles.query("ghost").entity
    stats = profiles.session.stats()["models"]
    assert all(model["fallback_reads"] == 0 for model in stats.values())
    await profiles.close()


async def test_what_this_library_writes_on_shards_027_reads(
    python_027: Path, shards_proc: ShardedServers, raw_shards: ShardedClient, tmp_path: Path
) -> None:
    """0.27, given the same URIs, reads this library's hashes, sorted set, flags and
    not-found marker from the servers its ring names."""
    profiles, follows, playlists, liked = await _repositories(shards_proc.urls)
    others = [{**_plain(PROFILE), "id": f"q{i}"} for i in range(9)]
    await profiles.add(PROFILE)
    for other in others:
        await profiles.add(type(PROFILE)(**other))
    await follows.add(FOLLOW)
    await playlists.add(Playlist(id="pl", data=MEMBERS))
    await liked.add(Liked("x"))
    with pytest.raises(EntityNotFoundError):
        await profiles.query("ghost").entity
    await profiles.close()
    placed = _placed(raw_shards)
    assert all(index == ring_index(key, SHARDS) for key, index in placed.items())
    assert len(set(placed.values())) == SHARDS

    results = _run_027(
        python_027,
        shards_proc.urls,
        [
            ["get", "profile", ["p1"], {}],
            *(["get", "profile", [other["id"]], {}] for other in others),
            ["get", "follow", ["ann", "bob"], {}],
            ["get", "playlist", ["pl"], {"withscores": True}],
            ["get", "liked", ["x"], {}],
            ["seed_fallback", "profile", {**_plain(PROFILE), "id": "ghost"}],
            ["get", "profile", ["ghost"], {}],
        ],
        tmp_path,
    )
    assert results == [
        _plain(PROFILE),
        *others,
        _plain(FOLLOW),
        {"id": "pl", "data": [["m1", 1.0], ["m2", 2.5], ["m3", 4.0]], "max_size": None},
        "x",
        None,
        {"not_found": True},
    ]
