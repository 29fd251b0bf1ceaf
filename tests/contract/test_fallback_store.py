"""The ``FallbackStore`` contract, over DictFallback, SQLFallback (SQLite and PostgreSQL)
and DatastoreFallback: each store called directly, read back through itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.models import (
    Follow,
    Liked,
    Person,
    Profile,
    Ranking,
    Seen,
    Shop,
    Top,
    sample_profile,
)

METAS = [model._meta for model in (Person, Follow, Profile, Ranking, Top, Shop, Seen, Liked)]
SHOP = Shop._meta
RANKING = Ranking._meta


@pytest.fixture(params=["dict", "sqlite", "postgres", "datastore"])
async def fallback(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """A fallback store under test, its tables created; closed after the test."""
    store = request.getfixturevalue(f"{request.param}_fallback")
    await store.create_all(METAS)
    yield store
    await store.close()


async def _members(store: Any, name: str) -> list[tuple[str, float]] | None:
    """A set's members in a fixed order (the protocol promises none)."""
    found = await store.get_members(RANKING, name)
    return None if found is None else sorted(found)


# -- records ---------------------------------------------------------------------------


async def test_ping_answers_none_when_the_store_is_up(fallback: Any) -> None:
    """ping is one cheap round trip that answers None while the store is reachable."""
    assert await fallback.ping() is None


async def test_get_many_answers_each_name_in_order(fallback: Any) -> None:
    """get_many returns what put_many stored, name by name, None where there is nothing."""
    ann, bob = Person(id="a", name="Ann", age=3), Person(id="b", name="Bob")
    await fallback.put_many(Person._meta, ["a", "b"], [ann, bob])
    found = await fallback.get_many(Person._meta, ["b", "missing", "a", "b"])
    assert found == [bob, None, ann, bob]
    assert await fallback.get_many(Person._meta, []) == []


async def test_every_field_type_round_trips(fallback: Any) -> None:
    """Each supported field type, and None or empty values, come back as they went in."""
    full = sample_profile()
    bare = sample_profile(id=8, address=None, nick=None, tags=[], extra={}, avatar=b"")
    await fallback.put_many(Profile._meta, ["7", "8"], [full, bare])
    assert await fallback.get_many(Profile._meta, ["7", "8"]) == [full, bare]


async def test_records_of_several_key_parts(fallback: Any) -> None:
    """A record named by several key parts is found by exactly that name."""
    meta = Follow._meta
    follow = Follow(user="ann", other="bob", since=2020)
    name = meta.key_text(("ann", "bob"))
    await fallback.put_many(meta, [name], [follow])
    assert await fallback.get_many(meta, [name, meta.key_text(("bob", "ann"))]) == [follow, None]


async def test_put_many_replaces_a_record_whole(fallback: Any) -> None:
    """A second put_many under a name replaces the record, fields left out included."""
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="Ann", age=3)])
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="Anna")])
    assert await fallback.get_many(Person._meta, ["a"]) == [Person(id="a", name="Anna", age=0)]


async def test_delete_removes_one_record(fallback: Any) -> None:
    """delete removes the named record only; deleting an absent one is no error."""
    ann, bob = Person(id="a", name="Ann"), Person(id="b", name="Bob")
    await fallback.put_many(Person._meta, ["a", "b"], [ann, bob])
    await fallback.delete(Person._meta, "a")
    await fallback.delete(Person._meta, "never")
    assert await fallback.get_many(Person._meta, ["a", "b"]) == [None, bob]


async def test_models_keep_their_records_apart(fallback: Any) -> None:
    """Records of two models under the same name do not meet."""
    await fallback.put_many(Person._meta, ["x"], [Person(id="x", name="X")])
    await fallback.add_members(RANKING, "x", [("p", 1.0)], None)
    assert await fallback.get_many(Person._meta, ["x"]) == [Person(id="x", name="X")]
    assert await _members(fallback, "x") == [("p", 1.0)]
    assert await fallback.get_members(Top._meta, "x") is None


# -- sorted sets -----------------------------------------------------------------------


async def test_get_members_of_an_absent_set_is_none(fallback: Any) -> None:
    """get_members answers None where there is no set."""
    assert await fallback.get_members(RANKING, "absent") is None


async def test_add_members_says_whether_it_created_the_set(fallback: Any) -> None:
    """add_members returns True when it created the set, False when it added to one."""
    assert await fallback.add_members(RANKING, "b1", [("ann", 10.0), ("bob", 7.0)], None)
    assert not await fallback.add_members(RANKING, "b1", [("cid", 12.0)], None)
    assert await _members(fallback, "b1") == [("ann", 10.0), ("bob", 7.0), ("cid", 12.0)]
    found = await fallback.get_members(RANKING, "b1")
    assert found is not None and all(isinstance(score, float) for _, score in found)


async def test_add_members_rescores_a_member(fallback: Any) -> None:
    """Adding a member already in the set replaces its score."""
    await fallback.add_members(RANKING, "b1", [("ann", 10.0), ("bob", 7.0)], None)
    await fallback.add_members(RANKING, "b1", [("ann", 1.5)], None)
    assert await _members(fallback, "b1") == [("ann", 1.5), ("bob", 7.0)]


async def test_add_members_keeps_the_max_size_highest(fallback: Any) -> None:
    """max_size keeps the highest scores; among equal scores the lower member goes first."""
    pairs = [("a", 1.0), ("b", 2.0), ("c", 3.0)]
    assert await fallback.add_members(RANKING, "b1", pairs, 3)
    await fallback.add_members(RANKING, "b1", [("d", 2.0)], 2)
    assert await _members(fallback, "b1") == [("c", 3.0), ("d", 2.0)]
    assert await fallback.add_members(RANKING, "b2", [("x", 5.0), ("y", 1.0), ("z", 9.0)], 2)
    assert await _members(fallback, "b2") == [("x", 5.0), ("z", 9.0)]


async def test_remove_members_removes_the_named_members(fallback: Any) -> None:
    """remove_members removes the named members, ignoring unknown ones and absent sets."""
    await fallback.add_members(RANKING, "b1", [("a", 1.0), ("b", 2.0), ("c", 3.0)], None)
    await fallback.remove_members(RANKING, "b1", ["a", "zz"])
    await fallback.remove_members(RANKING, "absent", ["a"])
    assert await _members(fallback, "b1") == [("b", 2.0), ("c", 3.0)]
    assert await fallback.get_members(RANKING, "absent") is None


async def test_removing_every_member_leaves_no_set(fallback: Any) -> None:
    """A set emptied by remove_members is gone: None, and the next add creates it again."""
    await fallback.add_members(RANKING, "b1", [("a", 1.0), ("b", 2.0)], None)
    await fallback.remove_members(RANKING, "b1", ["a", "b"])
    assert await fallback.get_members(RANKING, "b1") is None
    assert await fallback.add_members(RANKING, "b1", [("c", 3.0)], None)


async def test_delete_removes_a_set(fallback: Any) -> None:
    """delete removes a whole set; the next add creates it again."""
    await fallback.add_members(RANKING, "b1", [("a", 1.0)], None)
    await fallback.delete(RANKING, "b1")
    assert await fallback.get_members(RANKING, "b1") is None
    assert await fallback.add_members(RANKING, "b1", [("b", 2.0)], None)
    assert await _members(fallback, "b1") == [("b", 2.0)]


# -- record names, a page at a time ------------------------------------------------------


async def _all_names(store: Any, meta: Any, limit: int) -> list[list[str]]:
    """Every page of record_names, each call after the last name of the page before."""
    pages: list[list[str]] = []
    after = None
    while page := await store.record_names(meta, after, limit):
        assert len(page) <= limit
        pages.append(page)
        after = page[-1]
    return pages


async def test_record_names_pages_through_every_hash_record_once(fallback: Any) -> None:
    """record_names gives each record of the model exactly once across its pages, and no
    other model's; numeric keys page in the store's order with the last name as cursor."""
    profiles = [sample_profile(id=i) for i in (1, 2, 10, 11, 30, 100, 205)]
    await fallback.put_many(Profile._meta, [str(p.id) for p in profiles], profiles)
    await fallback.put_many(Person._meta, ["p"], [Person(id="p", name="Pat")])
    pages = await _all_names(fallback, Profile._meta, 3)
    assert [len(page) for page in pages] == [3, 3, 1]
    names = [name for page in pages for name in page]
    assert sorted(names) == sorted(str(p.id) for p in profiles)
    assert await fallback.record_names(Follow._meta, None, 10) == []


async def test_record_names_of_composite_keys_and_sorted_sets(fallback: Any) -> None:
    """A composite key's name joins its parts; a sorted set is named once, whatever its
    number of members."""
    meta = Follow._meta
    follows = [Follow(user=u, other=o, since=1) for u in ("a", "b") for o in ("x", "y")]
    await fallback.put_many(meta, [meta.key_text((f.user, f.other)) for f in follows], follows)
    names = [name for page in await _all_names(fallback, meta, 3) for name in page]
    assert sorted(names) == ["a:x", "a:y", "b:x", "b:y"]
    for board in ("east", "north", "west"):
        await fallback.add_members(RANKING, board, [("ann", 1.0), ("bob", 2.0)], None)
    pages = await _all_names(fallback, RANKING, 2)
    assert sorted(name for page in pages for name in page) == ["east", "north", "west"]


# -- schema ----------------------------------------------------------------------------


async def test_create_all_is_idempotent(fallback: Any) -> None:
    """create_all again, over tables it made and ones holding data, changes nothing."""
    await fallback.put_many(Person._meta, ["a"], [Person(id="a", name="Ann")])
    await fallback.add_members(RANKING, "b1", [("a", 1.0)], None)
    await fallback.create_all(METAS)
    await fallback.create_all(METAS[:2])
    assert await fallback.get_many(Person._meta, ["a"]) == [Person(id="a", name="Ann")]
    assert await _members(fallback, "b1") == [("a", 1.0)]


# -- repair records --------------------------------------------------------------------


async def test_repair_records_are_added_read_and_cleared(fallback: Any) -> None:
    """add_repairs records keys once each; repairs reads them; clear_repairs removes them."""
    assert await fallback.repairs(10) == []
    await fallback.add_repairs([b"person:a", b"person:not-found:a", b"\xff\x00", b"person:a"])
    found = await fallback.repairs(10)
    assert sorted(key for key, _ in found) == [b"person:a", b"person:not-found:a", b"\xff\x00"]
    assert len(await fallback.repairs(2)) == 2
    await fallback.clear_repairs(found)
    assert await fallback.repairs(10) == []
    await fallback.clear_repairs([])


async def test_a_key_recorded_again_survives_an_older_clear(fallback: Any) -> None:
    """clear_repairs of records read before a key was recorded again leaves that key."""
    await fallback.add_repairs([b"k1", b"k2"])
    read = await fallback.repairs(10)
    await fallback.add_repairs([b"k2"])
    await fallback.clear_repairs(read)
    assert [key for key, _ in await fallback.repairs(10)] == [b"k2"]


# -- geospatial sets ---------------------------------------------------------------------


async def _points(store: Any, name: str) -> list[tuple[str, float, float]] | None:
    found = await store.get_points(SHOP, name)
    return None if found is None else sorted(found)


async def test_points_of_an_absent_set_are_none(fallback: Any) -> None:
    """get_points answers None for a set with no member record."""
    assert await fallback.get_points(SHOP, "nowhere") is None


async def test_add_points_keeps_one_record_per_member(fallback: Any) -> None:
    """add_points stores each member with its coordinates as given, says whether it created
    the set, and moves a member added again; sets under other keys stay apart."""
    assert await fallback.add_points(SHOP, "paris", [("louvre", 2.3376, 48.8606)]) is True
    added = [("eiffel", 2.2945, 48.8584), ("louvre", 2.0, 48.0), ("a:b", -180.0, -85.05112878)]
    assert await fallback.add_points(SHOP, "paris", added) is False
    assert await fallback.add_points(SHOP, "pari", [("x", 1.0, 2.0)]) is True
    assert await _points(fallback, "paris") == [
        ("a:b", -180.0, -85.05112878),
        ("eiffel", 2.2945, 48.8584),
        ("louvre", 2.0, 48.0),
    ]
    assert await _points(fallback, "pari") == [("x", 1.0, 2.0)]


async def test_remove_points_and_delete_points(fallback: Any) -> None:
    """remove_points drops the named members (the last one takes the set with it);
    delete_points drops every member of one set only."""
    await fallback.add_points(SHOP, "paris", [("a", 1.0, 1.0), ("b", 2.0, 2.0), ("c", 3.0, 3.0)])
    await fallback.add_points(SHOP, "lyon", [("a", 4.0, 4.0)])
    await fallback.remove_points(SHOP, "paris", ["a", "missing"])
    assert await _points(fallback, "paris") == [("b", 2.0, 2.0), ("c", 3.0, 3.0)]
    await fallback.remove_points(SHOP, "paris", ["b", "c"])
    assert await fallback.get_points(SHOP, "paris") is None
    await fallback.add_points(SHOP, "paris", [("d", 5.0, 5.0)])
    await fallback.delete_points(SHOP, "paris")
    assert await fallback.get_points(SHOP, "paris") is None
    assert await _points(fallback, "lyon") == [("a", 4.0, 4.0)]


async def test_record_names_of_geo_sets_name_each_set_once(fallback: Any) -> None:
    """record_names of a geo model names each set once, however many member records it
    has, on pages whose reads cut through sets; one page of all gives the same order."""
    cities = ["p1", "p10", "p2", "pari", "paris", "z"]
    for size, city in enumerate(cities, start=1):
        points = [("a:b", 1.0, 1.0), *((f"m{i}", 1.0 + i, 2.0) for i in range(size))]
        await fallback.add_points(SHOP, city, points)
    pages = await _all_names(fallback, SHOP, 4)
    assert [len(page) for page in pages] == [4, 2]
    names = [name for page in pages for name in page]
    assert sorted(names) == cities
    assert await fallback.record_names(SHOP, None, 100) == names
    assert await fallback.record_names(SHOP, names[-1], 4) == []


# -- flags -------------------------------------------------------------------------------


async def test_flag_records_round_trip(fallback: Any) -> None:
    """A set flag's record reads back as its entity (flag True), by its key parts' name;
    delete removes it; record_names names each once."""
    meta = Seen._meta
    ann, bob = Seen(user="ann", item=7), Seen(user="bob", item=12)
    await fallback.put_many(meta, ["ann:7", "bob:12"], [ann, bob])
    await fallback.put_many(meta, ["ann:7"], [ann])
    assert await fallback.get_many(meta, ["bob:12", "ann:8", "ann:7"]) == [bob, None, ann]
    assert await fallback.get_many(Liked._meta, ["x"]) == [None]
    assert sorted(await fallback.record_names(meta, None, 10)) == ["ann:7", "bob:12"]
    await fallback.delete(meta, "ann:7")
    await fallback.delete(meta, "never:1")
    assert await fallback.get_many(meta, ["ann:7", "bob:12"]) == [None, bob]
