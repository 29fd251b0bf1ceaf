"""SortedSetRepository and SortedSetEntity (0.27's API) over memory:// and a real redis-server."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from dbdaora import (
    DictFallbackDataSource,
    EntityNotFoundError,
    SortedSetEntity,
    ValidationError,
)
from tests.support.legacy_entities import (
    Playlist,
    PlaylistRepository,
    UserPlaylist,
    UserPlaylistRepository,
)
from tests.support.raw import RawView

Source = tuple[Any, RawView]

MEMBERS = [("m1", 1), ("m2", 2), ("m3", 3), ("m4", 4), ("m5", 5)]


def _repository(cls: type[Any], legacy_memory: Source) -> Any:
    return cls(
        memory_data_source=legacy_memory[0],
        fallback_data_source=DictFallbackDataSource(),
        expire_time=60,
    )


async def _filled(legacy_memory: Source) -> Any:
    repository = _repository(PlaylistRepository, legacy_memory)
    await repository.add(Playlist(id="p", data=MEMBERS))
    return repository


def test_entity_is_a_dataclass_with_its_fields_first() -> None:
    """A SortedSetEntity subclass is a dataclass: its fields, then data, then max_size=None."""
    assert [f.name for f in dataclasses.fields(UserPlaylist)] == ["user", "id", "data", "max_size"]
    playlist = Playlist(id="my_plalist", data=[b"m1"])
    assert repr(playlist) == "Playlist(id='my_plalist', data=[b'm1'], max_size=None)"

    class Bare(SortedSetEntity):
        pass

    assert [f.name for f in dataclasses.fields(Bare)] == ["id", "data", "max_size"]


async def test_add_then_query_entity(legacy_memory: Source) -> None:
    """add writes the sorted set playlist:<id> (60 s TTL); a query reads the members as bytes."""
    repository = await _filled(legacy_memory)
    raw = legacy_memory[1]
    assert raw.zrange(b"playlist:p") == [(m.encode(), float(s)) for m, s in MEMBERS]
    ttl = raw.ttl(b"playlist:p")
    assert ttl is not None and 55 < ttl <= 60
    playlist = await repository.query("p").entity
    assert playlist == Playlist(id="p", data=[b"m1", b"m2", b"m3", b"m4", b"m5"], max_size=None)


async def test_withscores_and_reverse(legacy_memory: Source) -> None:
    """withscores gives (member bytes, float score) pairs; reverse orders by descending score."""
    repository = await _filled(legacy_memory)
    scored = await repository.query("p", withscores=True).entity
    assert scored.data == [(b"m1", 1.0), (b"m2", 2.0), (b"m3", 3.0), (b"m4", 4.0), (b"m5", 5.0)]
    assert all(isinstance(score, float) for _, score in scored.data)
    backwards = await repository.query("p", reverse=True).entity
    assert backwards.data == [b"m5", b"m4", b"m3", b"m2", b"m1"]


async def test_pages(legacy_memory: Source) -> None:
    """page/page_size select ranks as 0.27 did (page 1 first; no page means page 1)."""
    repository = await _filled(legacy_memory)
    assert (await repository.query("p", page_size=2).entity).data == [b"m1", b"m2"]
    assert (await repository.query("p", page=2, page_size=2).entity).data == [b"m3", b"m4"]
    assert (await repository.query("p", page=3, page_size=2).entity).data == [b"m5"]
    reverse_page = await repository.query("p", page=2, page_size=2, reverse=True).entity
    assert reverse_page.data == [b"m3", b"m2"]
    with pytest.raises(EntityNotFoundError):
        await repository.query("p", page=4, page_size=2).entity
    with pytest.raises(ValidationError, match="page_size must be a positive int"):
        repository.query("p", page_size=0)


async def test_score_bounds(legacy_memory: Source) -> None:
    """min_score/max_score select by score, inclusive, either bound alone too."""
    repository = await _filled(legacy_memory)
    assert (await repository.query("p", min_score=2, max_score=4).entity).data == [
        b"m2",
        b"m3",
        b"m4",
    ]
    assert (await repository.query("p", min_score=4).entity).data == [b"m4", b"m5"]
    assert (await repository.query("p", max_score=1.5, withscores=True).entity).data == [
        (b"m1", 1.0)
    ]
    reverse = await repository.query("p", min_score=2, max_score=3, reverse=True).entity
    assert reverse.data == [b"m3", b"m2"]
    with pytest.raises(EntityNotFoundError):
        await repository.query("p", min_score=10).entity


async def test_withmaxsize_is_the_total_member_count(legacy_memory: Source) -> None:
    """withmaxsize sets max_size to the set's size, whatever part of it was read."""
    repository = await _filled(legacy_memory)
    page = await repository.query("p", page=1, page_size=2, withmaxsize=True).entity
    assert page == Playlist(id="p", data=[b"m1", b"m2"], max_size=5)
    by_score = await repository.query("p", max_score=1, withmaxsize=True).entity
    assert by_score.max_size == 5


async def test_add_replaces_the_whole_set(legacy_memory: Source) -> None:
    """add replaces every member, in Redis and in the fallback; no data deletes the set."""
    repository = await _filled(legacy_memory)
    await repository.add(Playlist(id="p", data=[("z", 9), ("y", 1.5)]))
    raw = legacy_memory[1]
    assert raw.zrange(b"playlist:p") == [(b"y", 1.5), (b"z", 9.0)]
    raw.delete(b"playlist:p")  # the next read comes from the fallback
    assert (await repository.query("p", withscores=True).entity).data == [(b"y", 1.5), (b"z", 9.0)]
    await repository.add(Playlist(id="p", data=[]))
    with pytest.raises(EntityNotFoundError):
        await repository.query("p").entity
    assert raw.get(b"playlist:not-found:p") == b"1"


async def test_an_entity_read_back_can_be_added_again(legacy_memory: Source) -> None:
    """A read with scores (bytes members) is valid input to add, as in 0.27."""
    repository = await _filled(legacy_memory)
    read = await repository.query("p", withscores=True, page_size=2).entity
    await repository.add(read)
    assert (await repository.query("p", withscores=True).entity).data == [
        (b"m1", 1.0),
        (b"m2", 2.0),
    ]
    with pytest.raises(ValidationError, match="expected float"):
        await repository.add(Playlist(id="p", data=[("m", "high")]))
    with pytest.raises(ValidationError, match=r"\(member, score\) pairs"):
        await repository.add(Playlist(id="p", data=["m"]))


async def test_read_through_from_the_fallback(legacy_memory: Source) -> None:
    """A set only the fallback holds is answered from it and put back into Redis whole."""
    repository = await _filled(legacy_memory)
    raw = legacy_memory[1]
    raw.delete(b"playlist:p")
    page = await repository.query("p", page=2, page_size=2, withmaxsize=True).entity
    assert page == Playlist(id="p", data=[b"m3", b"m4"], max_size=5)
    assert len(raw.zrange(b"playlist:p")) == 5


async def test_exists_and_delete(legacy_memory: Source) -> None:
    """exists answers True then False; delete drops the set and leaves a not-found marker."""
    repository = await _filled(legacy_memory)
    assert await repository.query("p").exists is True
    await repository.query("p").delete
    assert await repository.query("p").exists is False
    assert legacy_memory[1].get(b"playlist:not-found:p") == b"1"
    with pytest.raises(EntityNotFoundError):
        await repository.query("p").entity


async def test_composite_keys_and_many(legacy_memory: Source) -> None:
    """key_attrs make user_playlist:<user>:<id>; keys by position or name; many= skips misses."""
    repository = _repository(UserPlaylistRepository, legacy_memory)
    await repository.add(
        UserPlaylist(user="ann", id="a", data=[("x", 1)]),
        UserPlaylist(user="ann", id="b", data=[("y", 2)]),
    )
    assert legacy_memory[1].zrange(b"user_playlist:ann:a") == [(b"x", 1.0)]
    expected = UserPlaylist(user="ann", id="a", data=[b"x"])
    assert await repository.query("ann", "a").entity == expected
    assert await repository.query(id="a", user="ann").entity == expected
    many = repository.query("ann", many=["b", "zzz", "a"], withscores=True).entities
    assert [entity async for entity in many] == [
        UserPlaylist(user="ann", id="b", data=[(b"y", 2.0)]),
        UserPlaylist(user="ann", id="a", data=[(b"x", 1.0)]),
    ]


async def test_int_scores_in_the_fallback_read_as_floats(legacy_memory: Source) -> None:
    """Scores a fallback kept as ints (as 0.27 wrote them) come back as floats."""
    fallback = DictFallbackDataSource()
    await fallback.add_members(PlaylistRepository.meta, "p", [("a", 1), ("b", 2)], None)  # type: ignore[list-item]
    repository = PlaylistRepository(
        memory_data_source=legacy_memory[0], fallback_data_source=fallback, expire_time=60
    )
    for _ in range(2):  # from the fallback, then from the Redis it filled
        data = (await repository.query("p", withscores=True).entity).data
        assert data == [(b"a", 1.0), (b"b", 2.0)]
        assert all(type(score) is float for _, score in data)
