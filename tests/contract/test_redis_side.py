"""The ``RedisSide`` contract, over InProcessRedis, RedisStore (auto-pipelined or not) and
ClusterStore: each store called directly, read back through itself and a ``RawView``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dbdaora.backends import geo
from dbdaora.backends.redis.ordered import OrderedWrites
from dbdaora.exceptions import BackendError, BadDataError
from dbdaora.lease import LEASE_SECONDS, NOT_FOUND, lease_token
from tests.contract.conftest import Side
from tests.support import claims
from tests.support.raw import RawView

TTL = 60
INF = float("inf")


def _keys(prefix: str, name: str = "e1") -> tuple[bytes, bytes]:
    """An entity's data key and its not-found marker, named as ``ModelMeta`` names them."""
    return f"{prefix}:{name}".encode(), f"{prefix}:not-found:{name}".encode()


def _assert_ttl(raw: RawView, key: bytes, seconds: float) -> None:
    left = raw.ttl(key)
    assert left is not None and seconds - 3 < left <= seconds, left


async def _set(store: Any, key: bytes, marker: bytes, members: list[tuple[str, float]]) -> None:
    await claims.put_sorted_set(store, key, marker, members, TTL)


# -- reads ---------------------------------------------------------------------------


async def test_ping_answers_none_when_the_store_is_up(side: Side) -> None:
    """ping is one round trip that answers None while the store is reachable."""
    store, _ = side
    assert await store.ping() is None
    assert await asyncio.gather(*(store.ping() for _ in range(3))) == [None, None, None]


async def test_hgetall_and_hmget_read_one_hash(side: Side) -> None:
    """hgetall is the whole hash ({} when absent); hmget answers None for missing fields."""
    store, _ = side
    key, marker = _keys("reads")
    await claims.put_hashes(store, [(key, marker, {b"name": "Ann", b"age": b"3"})], TTL)
    assert await store.hgetall(key) == {b"name": b"Ann", b"age": b"3"}
    assert await store.hmget(key, [b"age", b"nope", b"name"]) == [b"3", None, b"Ann"]
    assert await store.hgetall(b"reads:absent") == {}
    assert await store.hmget(b"reads:absent", [b"name", b"age"]) == [None, None]


async def test_batched_hash_reads_keep_the_order_of_keys(side: Side) -> None:
    """hgetall_many / hmget_many answer key by key, in order, empty for absent keys."""
    store, _ = side
    (one, m1), (two, m2) = _keys("batch", "a"), _keys("batch", "b")
    await claims.put_hashes(store, [(one, m1, {b"n": "1", b"x": "x"}), (two, m2, {b"n": "2"})], TTL)
    keys = [two, b"batch:absent", one]
    assert await store.hgetall_many(keys) == [{b"n": b"2"}, {}, {b"n": b"1", b"x": b"x"}]
    assert await store.hmget_many(keys, [b"x", b"n"]) == [
        [None, b"2"],
        [None, None],
        [b"x", b"1"],
    ]


async def test_exists_sees_hashes_sets_and_markers(side: Side) -> None:
    """exists is True for a hash, a sorted set and a marker, False for an absent key."""
    store, _ = side
    (h, hm), (z, zm), (_, nm) = _keys("ex", "h"), _keys("ex", "z"), _keys("ex", "n")
    await claims.put_hashes(store, [(h, hm, {b"a": "1"})], TTL)
    await _set(store, z, zm, [("a", 1.0)])
    await claims.delete(store, b"ex:n", nm, TTL)
    assert [await store.exists(k) for k in (h, z, nm, b"ex:absent")] == [True, True, True, False]


# -- lease -----------------------------------------------------------------------------


async def test_lease_takes_an_absent_marker(side: Side) -> None:
    """lease answers None for an absent marker and sets it to the token for LEASE_SECONDS."""
    store, raw = side
    _, marker = _keys("lease-absent")
    token = lease_token()
    assert await store.lease([marker], token) == [None]
    assert raw.get(marker) == token
    _assert_ttl(raw, marker, LEASE_SECONDS)


async def test_lease_leaves_not_found_and_others_leases(side: Side) -> None:
    """lease answers NOT_FOUND or another's token and leaves that marker; marker by marker."""
    store, raw = side
    (_, free), (gone, nf), (_, held) = _keys("lm", "a"), _keys("lm", "b"), _keys("lm", "c")
    other, token = lease_token(), lease_token()
    await claims.delete(store, gone, nf, TTL)
    await store.lease([held], other)
    assert await store.lease([free, nf, held], token) == [None, NOT_FOUND, other]
    assert [raw.get(m) for m in (free, nf, held)] == [token, NOT_FOUND, other]
    _assert_ttl(raw, nf, TTL)


async def test_hgetall_or_lease_on_a_hit(side: Side) -> None:
    """A hit answers (hash, None) and takes no lease."""
    store, raw = side
    key, marker = _keys("gol-hit")
    await claims.put_hashes(store, [(key, marker, {b"a": "1"})], TTL)
    assert await store.hgetall_or_lease(key, marker, lease_token()) == ({b"a": b"1"}, None)
    assert not raw.exists(marker)


async def test_hgetall_or_lease_on_a_miss(side: Side) -> None:
    """A miss answers ({}, before): None and the lease taken, else the marker it found."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3) = _keys("gol", "a"), _keys("gol", "b"), _keys("gol", "c")
    token, other = lease_token(), lease_token()
    await store.lease([m2], other)
    await claims.delete(store, k3, m3, TTL)
    assert await store.hgetall_or_lease(k1, m1, token) == ({}, None)
    assert await store.hgetall_or_lease(k2, m2, token) == ({}, other)
    assert await store.hgetall_or_lease(k3, m3, token) == ({}, NOT_FOUND)
    assert [raw.get(m) for m in (m1, m2, m3)] == [token, other, NOT_FOUND]
    _assert_ttl(raw, m1, LEASE_SECONDS)
    assert isinstance(store.leases_on_read(), bool)


# -- fills -----------------------------------------------------------------------------


async def test_fill_hashes_writes_under_the_callers_lease(side: Side) -> None:
    """fill_hashes writes each leased hash with its TTL (or none) and drops its marker."""
    store, raw = side
    (k1, m1), (k2, m2) = _keys("fh", "a"), _keys("fh", "b")
    token = lease_token()
    await store.lease([m1, m2], token)
    await store.fill_hashes([(k1, m1, {b"name": "Ann", b"age": b"3"})], token, TTL)
    await store.fill_hashes([(k2, m2, {b"name": "Bob"})], token, None)
    assert raw.hgetall(k1) == {b"name": b"Ann", b"age": b"3"}
    assert raw.hgetall(k2) == {b"name": b"Bob"}
    _assert_ttl(raw, k1, TTL)
    assert raw.ttl(k2) is None
    assert not raw.exists(m1) and not raw.exists(m2)


async def test_fill_hashes_writes_only_items_still_leased(side: Side) -> None:
    """In one fill_hashes call, items whose marker is absent or another's are left alone."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3) = _keys("fho", "a"), _keys("fho", "b"), _keys("fho", "c")
    token, other = lease_token(), lease_token()
    await store.lease([m1], token)
    await store.lease([m3], other)
    items = [(k, m, {b"v": "1"}) for k, m in ((k1, m1), (k2, m2), (k3, m3))]
    await store.fill_hashes(items, token, TTL)
    assert raw.hgetall(k1) == {b"v": b"1"}
    assert not raw.exists(k2) and not raw.exists(k3)
    assert not raw.exists(m2) and raw.get(m3) == other


async def test_fill_sorted_set_writes_under_the_callers_lease(side: Side) -> None:
    """fill_sorted_set writes the whole set, float scores, with the TTL, and drops the marker."""
    store, raw = side
    key, marker = _keys("fz")
    token = lease_token()
    await store.lease([marker], token)
    await store.fill_sorted_set(key, marker, [("a", 2), ("b", 1)], token, TTL)
    assert await store.zrange(key, 0, -1, reverse=False) == [(b"b", 1.0), (b"a", 2.0)]
    assert all(isinstance(score, float) for _, score in raw.zrange(key))
    _assert_ttl(raw, key, TTL)
    assert not raw.exists(marker)


async def test_fill_missing_sets_not_found_where_still_leased(side: Side) -> None:
    """fill_missing turns the caller's leases into NOT_FOUND with the TTL, no others."""
    store, raw = side
    (_, m1), (_, m2), (_, m3), (_, m4) = (_keys("fm", n) for n in "abcd")
    token, other = lease_token(), lease_token()
    await store.lease([m1, m4], token)
    await store.lease([m3], other)
    await store.fill_missing([m1, m2, m3], token, TTL)
    await store.fill_missing([m4], token, None)
    assert [raw.get(m) for m in (m1, m2, m3, m4)] == [NOT_FOUND, None, other, NOT_FOUND]
    _assert_ttl(raw, m1, TTL)
    assert raw.ttl(m4) is None


Write = Callable[[Any, bytes, bytes], Awaitable[None]]
WRITES: dict[str, tuple[str | None, Write]] = {
    # name: (what the key holds afterwards, the write)
    "put_hashes": ("hash", lambda s, k, m: claims.put_hashes(s, [(k, m, {b"v": "new"})], TTL)),
    "put_sorted_set": ("zset", lambda s, k, m: claims.put_sorted_set(s, k, m, [("new", 1.0)], TTL)),
    "delete": (None, lambda s, k, m: claims.delete(s, k, m, TTL)),
    "claim": (None, lambda s, k, m: s.claim([m], lease_token())),
    "remove_members": (None, lambda s, k, m: claims.remove_members(s, k, m, ["old"])),
    "add_members": (
        None,
        lambda s, k, m: claims.add_members(s, k, m, [("x", 1.0)], TTL, None, created=True),
    ),
}
FILLS: dict[str, Callable[[Any, bytes, bytes, bytes], Awaitable[None]]] = {
    "fill_hashes": lambda s, k, m, t: s.fill_hashes([(k, m, {b"v": "old"})], t, TTL),
    "fill_sorted_set": lambda s, k, m, t: s.fill_sorted_set(k, m, [("old", 0.0)], t, TTL),
    "fill_missing": lambda s, k, m, t: s.fill_missing([m], t, TTL),
}


def _state(raw: RawView, key: bytes, marker: bytes, kind: str | None) -> tuple[Any, Any]:
    content: Any = raw.exists(key)
    if kind == "hash":
        content = raw.hgetall(key)
    elif kind == "zset":
        content = raw.zrange(key)
    return content, raw.get(marker)


@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("write", list(WRITES))
async def test_a_write_after_the_lease_beats_the_fill(side: Side, write: str, fill: str) -> None:
    """A fill whose marker a write replaced or dropped since the lease changes nothing."""
    store, raw = side
    key, marker = _keys(f"race-{write}-{fill}")
    token = lease_token()
    assert await store.lease([marker], token) == [None]
    kind, do_write = WRITES[write]
    await do_write(store, key, marker)
    after_write = _state(raw, key, marker, kind)
    await FILLS[fill](store, key, marker, token)
    assert _state(raw, key, marker, kind) == after_write


# -- writes ----------------------------------------------------------------------------


async def test_put_hashes_replaces_whole_hashes_and_drops_markers(side: Side) -> None:
    """put_hashes replaces each hash whole with its TTL and drops a lease or not-found marker."""
    store, raw = side
    (k1, m1), (k2, m2) = _keys("ph", "a"), _keys("ph", "b")
    await claims.put_hashes(store, [(k1, m1, {b"old": "1", b"v": "1"})], TTL)
    await store.lease([m1], lease_token())
    await claims.delete(store, k2, m2, TTL)
    await claims.put_hashes(store, [(k1, m1, {b"v": "2"}), (k2, m2, {b"w": b"3"})], TTL)
    assert raw.hgetall(k1) == {b"v": b"2"} and raw.hgetall(k2) == {b"w": b"3"}
    _assert_ttl(raw, k1, TTL)
    assert not raw.exists(m1) and not raw.exists(m2)
    await claims.put_hashes(store, [(k1, m1, {b"v": "4"})], None)
    assert raw.ttl(k1) is None


async def test_put_sorted_set_replaces_the_whole_set(side: Side) -> None:
    """put_sorted_set replaces every member, sets the TTL and drops the marker."""
    store, raw = side
    key, marker = _keys("pz")
    await _set(store, key, marker, [("a", 1.0), ("b", 2.0)])
    await store.lease([marker], lease_token())
    await claims.put_sorted_set(store, key, marker, [("c", 3.0), ("b", 0.5)], TTL)
    assert raw.zrange(key) == [(b"b", 0.5), (b"c", 3.0)]
    _assert_ttl(raw, key, TTL)
    assert not raw.exists(marker)


async def test_put_sorted_set_with_no_members_deletes_the_set(side: Side) -> None:
    """put_sorted_set with an empty member list leaves neither the set nor a marker."""
    store, raw = side
    key, marker = _keys("pz-empty")
    await _set(store, key, marker, [("a", 1.0)])
    await store.lease([marker], lease_token())
    await claims.put_sorted_set(store, key, marker, [], TTL)
    assert not raw.exists(key) and not raw.exists(marker)
    assert await store.zcard(key) == 0


async def test_claim_takes_the_marker_whatever_it_held(side: Side) -> None:
    """claim sets the writer's token (LEASE_SECONDS) over an absent, not-found or leased marker."""
    store, raw = side
    (_, m1), (k2, m2), (_, m3) = _keys("cl", "a"), _keys("cl", "b"), _keys("cl", "c")
    await claims.delete(store, k2, m2, TTL)
    await store.lease([m3], lease_token())
    for marker in (m1, m2, m3):
        token = lease_token()
        await store.claim([marker], token)
        assert raw.get(marker) == token
        _assert_ttl(raw, marker, LEASE_SECONDS)


async def test_add_members_adds_to_a_set_redis_holds(side: Side) -> None:
    """add_members adds and rescores where the set exists, refreshes the TTL, drops the marker."""
    store, raw = side
    key, marker = _keys("am")
    await claims.put_sorted_set(store, key, marker, [("a", 1.0), ("b", 2.0)], None)
    await store.lease([marker], lease_token())
    await claims.add_members(store, key, marker, [("c", 3.0), ("a", 5.0)], TTL, None, created=False)
    assert raw.zrange(key) == [(b"b", 2.0), (b"c", 3.0), (b"a", 5.0)]
    _assert_ttl(raw, key, TTL)
    assert not raw.exists(marker)


async def test_add_members_creates_a_set_only_under_its_standing_claim(side: Side) -> None:
    """Where no set exists, add_members creates it only with created=True; a claim lost
    drops the key and the marker."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3) = _keys("amc", "a"), _keys("amc", "b"), _keys("amc", "c")
    members = [("a", 1.0), ("b", 2.0)]
    mine, yours = lease_token(), lease_token()
    await store.claim([m1], mine)
    await store.add_members(k1, m1, members, TTL, None, token=mine, created=True)
    await store.claim([m2], mine)
    await store.add_members(k2, m2, members, TTL, None, token=mine, created=False)
    await store.claim([m3], mine)
    await store.claim([m3], yours)
    await store.add_members(k3, m3, members, TTL, None, token=mine, created=True)
    assert raw.zrange(k1) == [(b"a", 1.0), (b"b", 2.0)]
    _assert_ttl(raw, k1, TTL)
    assert not raw.exists(k2) and not raw.exists(k3)
    assert not any(raw.exists(m) for m in (m1, m2, m3))


async def test_add_members_trims_to_max_size_keeping_the_highest(side: Side) -> None:
    """max_size keeps the highest scores; among equal scores the lower member goes first."""
    store, raw = side
    (k1, m1), (k2, m2) = _keys("ams", "a"), _keys("ams", "b")
    await claims.put_sorted_set(store, k1, m1, [("a", 1.0), ("b", 2.0), ("c", 3.0)], TTL)
    await claims.add_members(store, k1, m1, [("d", 2.0)], TTL, 2, created=False)
    assert raw.zrange(k1) == [(b"d", 2.0), (b"c", 3.0)]
    token = lease_token()
    await store.claim([m2], token)
    pairs = [("x", 5.0), ("y", 1.0), ("z", 9.0)]
    await store.add_members(k2, m2, pairs, TTL, 2, token=token, created=True)
    assert raw.zrange(k2) == [(b"x", 5.0), (b"z", 9.0)]


async def test_remove_members_removes_and_drops_the_marker(side: Side) -> None:
    """remove_members removes the named members (ignores unknown ones) and ends any lease."""
    store, raw = side
    key, marker = _keys("rm")
    await _set(store, key, marker, [("a", 1.0), ("b", 2.0), ("c", 3.0)])
    await store.lease([marker], lease_token())
    await claims.remove_members(store, key, marker, ["a", "zz"])
    assert raw.zrange(key) == [(b"b", 2.0), (b"c", 3.0)]
    assert not raw.exists(marker)
    await claims.remove_members(store, key, marker, ["b", "c"])
    assert not raw.exists(key) and await store.zcard(key) == 0


async def test_delete_drops_the_key_and_sets_not_found(side: Side) -> None:
    """delete drops a hash or set and sets a NOT_FOUND marker with the TTL (or none)."""
    store, raw = side
    (k1, m1), (k2, m2) = _keys("del", "a"), _keys("del", "b")
    await claims.put_hashes(store, [(k1, m1, {b"a": "1"})], TTL)
    await _set(store, k2, m2, [("a", 1.0)])
    await store.lease([m2], lease_token())
    await claims.delete(store, k1, m1, TTL)
    await claims.delete(store, k2, m2, None)
    assert not raw.exists(k1) and not raw.exists(k2)
    assert raw.get(m1) == NOT_FOUND and raw.get(m2) == NOT_FOUND
    _assert_ttl(raw, m1, TTL)
    assert raw.ttl(m2) is None


async def test_a_ttl_of_zero_means_no_expiry(side: Side) -> None:
    """A ttl of 0, as in the scripts' ARGV, writes keys without expiry on every store."""
    store, raw = side
    (k1, m1), (k2, m2) = _keys("zero", "a"), _keys("zero", "b")
    await claims.put_hashes(store, [(k1, m1, {b"a": "1"})], 0)
    await claims.delete(store, k2, m2, 0)
    assert raw.ttl(k1) is None and raw.get(m2) == NOT_FOUND and raw.ttl(m2) is None


async def test_evict_drops_only_the_keys_named(side: Side) -> None:
    """evict deletes hashes, sets and markers named, across slots, and nothing else."""
    store, raw = side
    (h, hm), (z, zm), (k, km), (kept, keptm) = (_keys("ev", n) for n in "abck")
    await claims.put_hashes(store, [(h, hm, {b"a": "1"}), (kept, keptm, {b"a": "1"})], TTL)
    await _set(store, z, zm, [("a", 1.0)])
    await claims.delete(store, k, km, TTL)
    await store.evict([h, z, km])
    assert [raw.exists(key) for key in (h, z, km, kept)] == [False, False, False, True]


async def test_empty_batches_answer_at_once(side: Side) -> None:
    """Every batch operation given an empty batch returns promptly, empty, without error."""
    store, _ = side
    key, marker = _keys("empty")
    token = lease_token()
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "hgetall_many": lambda: store.hgetall_many([]),
        "hmget_many": lambda: store.hmget_many([], [b"a"]),
        "lease": lambda: store.lease([], token),
        "fill_hashes": lambda: store.fill_hashes([], token, TTL),
        "fill_missing": lambda: store.fill_missing([], token, TTL),
        "claim": lambda: store.claim([], token),
        "put_hashes": lambda: store.put_hashes([], token, TTL),
        "remove_members": lambda: store.remove_members(key, marker, [], token),
        "evict": lambda: store.evict([]),
    }
    failed: dict[str, str] = {}
    for name, call in calls.items():
        try:
            answer = await asyncio.wait_for(call(), 2)
        except Exception as exc:  # collected, so one run names every failure
            failed[name] = repr(exc)
        else:
            if answer not in ([], None):
                failed[name] = f"answered {answer!r}"
    assert not failed, "; ".join(f"{name}: {why}" for name, why in failed.items())


# -- ranges ----------------------------------------------------------------------------


async def test_zrange_by_rank_and_zcard(side: Side) -> None:
    """zrange takes inclusive ranks, negative from the end, reverse flipping; zcard counts."""
    store, _ = side
    key, marker = _keys("zr")
    await _set(store, key, marker, [("d", 4.0), ("c", 2.0), ("a", 1.0), ("b", 2.0)])
    a, b, c, d = (b"a", 1.0), (b"b", 2.0), (b"c", 2.0), (b"d", 4.0)
    assert await store.zrange(key, 0, -1, reverse=False) == [a, b, c, d]
    assert await store.zrange(key, 1, 2, reverse=False) == [b, c]
    assert await store.zrange(key, -2, -1, reverse=False) == [c, d]
    assert await store.zrange(key, 0, 1, reverse=True) == [d, c]
    assert await store.zrange(key, -1, -1, reverse=True) == [a]
    assert await store.zrange(key, 2, 100, reverse=False) == [c, d]
    assert await store.zrange(key, 5, 10, reverse=False) == []
    assert await store.zrange(key, 2, 1, reverse=False) == []
    assert await store.zrange(b"zr:absent", 0, -1, reverse=False) == []
    assert (await store.zcard(key), await store.zcard(b"zr:absent")) == (4, 0)


async def test_zrange_by_score(side: Side) -> None:
    """zrange_by_score takes inclusive bounds, reverse, and offset/count (None: all)."""
    store, _ = side
    key, marker = _keys("zs")
    await _set(store, key, marker, [("a", 1.0), ("b", 2.0), ("c", 2.0), ("d", 4.0), ("e", 5.0)])
    a, b, c, d, e = (b"a", 1.0), (b"b", 2.0), (b"c", 2.0), (b"d", 4.0), (b"e", 5.0)

    async def by_score(low: float, high: float, **options: Any) -> list[tuple[bytes, float]]:
        options = {"reverse": False, "offset": 0, "count": None, **options}
        pairs: list[tuple[bytes, float]] = await store.zrange_by_score(key, low, high, **options)
        return pairs

    assert await by_score(2, 4) == [b, c, d]
    assert await by_score(2, 4, reverse=True) == [d, c, b]
    assert await by_score(-INF, INF) == [a, b, c, d, e]
    assert await by_score(1, 5, offset=1, count=2) == [b, c]
    assert await by_score(1, 5, reverse=True, offset=1, count=None) == [d, c, b, a]
    assert await by_score(1, 5, offset=0, count=0) == []
    assert await by_score(6, 9) == []
    assert (
        await store.zrange_by_score(b"zs:absent", -INF, INF, reverse=False, offset=0, count=None)
        == []
    )


# -- a key of another type --------------------------------------------------------------


async def test_a_key_of_another_type_is_bad_data(side: Side) -> None:
    """Every read of a key holding another type raises BadDataError, a store failure's not."""
    store, raw = side
    key, marker = _keys("wrong")
    raw.set(key, b"x")
    reads: list[Awaitable[Any]] = [
        store.hgetall(key),
        store.hmget(key, [b"a"]),
        store.hgetall_many([key]),
        store.hmget_many([key], [b"a"]),
        store.hlen(key),
        store.hgetall_or_lease(key, marker, lease_token()),
        store.zrange(key, 0, -1, reverse=False),
        store.zrange_by_score(key, -INF, INF, reverse=False, offset=0, count=None),
        store.zcard(key),
    ]
    for read in reads:
        with pytest.raises(BadDataError) as caught:
            await read
        assert not isinstance(caught.value, BackendError)
    assert await store.exists(key)
    assert not raw.exists(marker)  # the failed read took no lease
    await claims.put_hashes(store, [(marker, b"other", {b"f": b"v"})], TTL)  # a hash as marker
    with pytest.raises(BadDataError):
        await store.lease([marker], lease_token())


async def test_whole_writes_replace_a_key_of_another_type(side: Side) -> None:
    """put_hashes and put_sorted_set replace a key of another type; adding members raises."""
    store, raw = side
    key, marker = _keys("wrong")
    raw.set(key, b"x")
    await claims.put_hashes(store, [(key, marker, {b"a": b"1"})], TTL)
    assert raw.hgetall(key) == {b"a": b"1"}
    raw.set(key, b"x")
    await _set(store, key, marker, [("m", 1.0)])
    assert raw.zrange(key) == [(b"m", 1.0)]
    raw.set(key, b"x")
    with pytest.raises(BadDataError):
        await claims.add_members(store, key, marker, [("m", 1.0)], TTL, None, created=True)
    with pytest.raises(BadDataError):
        await claims.remove_members(store, key, marker, ["m"])


async def test_a_fill_replaces_a_key_of_another_type_on_one_node(side: Side) -> None:
    """Where K and M share a script, the fill deletes K first; the ordered fills of a
    cluster or shards write only an absent K, so a reader evicts a key of another type
    before filling it."""
    store, raw = side
    key, marker = _keys("wrong")
    on_cluster = isinstance(store, OrderedWrites)
    for fill in ("hash", "set"):
        raw.set(key, b"x")
        token = lease_token()
        assert await store.lease([marker], token) == [None]
        if fill == "hash":
            await store.fill_hashes([(key, marker, {b"a": b"1"})], token, TTL)
        else:
            await store.fill_sorted_set(key, marker, [("m", 1.0)], token, TTL)
        if on_cluster:
            assert raw.get(key) == b"x"
            raw.delete(marker)
        elif fill == "hash":
            assert raw.hgetall(key) == {b"a": b"1"}
        else:
            assert raw.zrange(key) == [(b"m", 1.0)]


# -- restarts: the epoch and the sweep ---------------------------------------------------


async def test_epochs_name_the_instance_and_start_empty(side: Side) -> None:
    """epochs answers the server's instance (stable while it runs) and no epoch yet."""
    store, _ = side
    instance, epochs, restored = await store.epochs()
    assert instance and epochs == {}
    assert not restored  # every side here starts empty, with no persistence
    assert (await store.epochs()).instance == instance


async def test_sweep_deletes_the_prefixes_keys_and_records_the_epoch(side: Side) -> None:
    """sweep unlinks every key under its prefixes (markers too), others stay; epochs record it."""
    store, _ = side
    keys = [_keys("swept", str(i)) for i in range(2500)]  # more than one SCAN batch
    await claims.put_hashes(store, [(k, m, {b"f": b"v"}) for k, m in keys], TTL)
    await claims.delete(store, *_keys("swept", "gone"), TTL)
    kept, kept_marker = _keys("kept")
    await claims.put_hashes(store, [(kept, kept_marker, {b"f": b"v"})], TTL)
    instance = (await store.epochs()).instance
    assert await store.sweep([b"swept:"], instance, lease_token())
    assert await store.hgetall_many([k for k, _ in keys]) == [{}] * len(keys)
    assert not await store.exists(_keys("swept", "gone")[1])
    assert await store.hgetall(kept) == {b"f": b"v"}
    assert await store.epochs() == (instance, {b"swept:": instance}, False)


async def test_sweep_refuses_another_instance_and_a_held_lock(side: Side) -> None:
    """A sweep for an instance the server no longer is, or while another sweeps, does nothing."""
    store, _ = side
    key, marker = _keys("swept")
    await claims.put_hashes(store, [(key, marker, {b"f": b"v"})], TTL)
    instance = (await store.epochs()).instance
    assert not await store.sweep([b"swept:"], b"0" * 40, lease_token())
    await store.claim([b"dbdaora:sweeping"], lease_token())  # another sweeper's lock
    assert not await store.sweep([b"swept:"], instance, lease_token())
    assert await store.hgetall(key) == {b"f": b"v"}
    assert (await store.epochs()).swept == {}


async def test_concurrent_sweeps_one_sweeps_and_all_end_recorded(side: Side) -> None:
    """Racing sweepers: each is refused or sweeps whole; the epoch is recorded, the lock freed."""
    store, _ = side
    instance = (await store.epochs()).instance
    done = await asyncio.gather(*(store.sweep([b"x:"], instance, lease_token()) for _ in range(5)))
    assert sum(done) >= 1
    assert (await store.epochs()).swept == {b"x:": instance}
    assert not await store.exists(b"dbdaora:sweeping")


# -- geospatial sets -------------------------------------------------------------------


async def test_geosearch_answers_as_redis_does(side: Side) -> None:
    """geosearch is GEOSEARCH ... ASC WITHDIST WITHCOORD over a set written with GEOADD's
    scores: members within the radius, nearest first, distances in the unit; [] for none."""
    store, raw = side
    key, marker = _keys("geo")
    places = {"a": (2.3376, 48.8606), "b": (2.2945, 48.8584), "c": (2.1204, 48.8049)}
    members = [(name, geo.score(*at)) for name, at in places.items()]
    await claims.put_sorted_set(store, key, marker, members, TTL)
    pairs = [(name.encode(), score) for name, score in members]
    for radius, unit, count in [(5, "km", None), (20, "km", 2), (3, "mi", None), (1, "m", None)]:
        found = await store.geosearch(key, 2.3522, 48.8566, radius, unit, count)
        assert found == geo.search(pairs, 2.3522, 48.8566, radius, unit, count)
        if raw.client is not None:
            replied = raw.client.geosearch(
                key,
                longitude=2.3522,
                latitude=48.8566,
                radius=radius,
                unit=unit,
                sort="ASC",
                count=count,
                withdist=True,
                withcoord=True,
            )
            assert found == [(m, d, tuple(at)) for m, d, at in replied]
    assert await store.geosearch(b"geo:absent", 0.0, 0.0, 1.0, "km", None) == []
