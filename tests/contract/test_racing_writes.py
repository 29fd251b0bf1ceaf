"""Racing writes on every Redis side (``memory://``, one node auto-pipelined or not, the
cluster), driven step by step: each write is its claim, then (after its fallback write,
which these tests leave out) its step under the claim. Whatever the interleaving of two
writes' steps, or of a write and a reader's lease and fill, Redis ends with the later
write's result when the two did not overlap, and with no copy at all when they did; a
not-found marker (a flag's ``0``) never outlives an overlapping add. ``dbdaora.lease``
states why.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from dbdaora.lease import NOT_FOUND, lease_token
from tests.contract.conftest import Side
from tests.support import claims
from tests.support.raw import RawView

TTL = 60


Step = Callable[[Any, bytes, bytes, bytes], Awaitable[None]]
State = tuple[Any, Any]  # K's content (a hash, or a set's pairs) and M's value


def _added(score: float) -> Callable[[State], State]:
    """add_members of ("m", score) to a set Redis holds; a set it lacks is left to a read."""

    def after(state: State) -> State:
        pairs = dict(state[0])
        if pairs:
            pairs[b"m"] = score
        return sorted(pairs.items(), key=lambda pair: pair[1]), None

    return after


def _removed(state: State) -> State:
    return [pair for pair in state[0] if pair[0] != b"m"], None


# name: (its step under the claim, what Redis holds after it, from what it held before)
HASH_WRITES: dict[str, tuple[Step, Callable[[State], State]]] = {
    "add-A": (
        lambda s, k, m, t: s.put_hashes([(k, m, {b"v": b"A"})], t, TTL),
        lambda _: ({b"v": b"A"}, None),
    ),
    "add-B": (
        lambda s, k, m, t: s.put_hashes([(k, m, {b"v": b"B"})], t, TTL),
        lambda _: ({b"v": b"B"}, None),
    ),
    "delete": (lambda s, k, m, t: s.delete(k, m, t, TTL), lambda _: ({}, NOT_FOUND)),
}
SET_WRITES: dict[str, tuple[Step, Callable[[State], State]]] = {
    "add-1": (
        lambda s, k, m, t: s.add_members(k, m, [("m", 1.0)], TTL, None, token=t, created=False),
        _added(1.0),
    ),
    "add-2": (
        lambda s, k, m, t: s.add_members(k, m, [("m", 2.0)], TTL, None, token=t, created=False),
        _added(2.0),
    ),
    "remove": (lambda s, k, m, t: s.remove_members(k, m, ["m"], t), _removed),
    "replace": (
        lambda s, k, m, t: s.put_sorted_set(k, m, [("r", 3.0)], t, TTL),
        lambda _: ([(b"r", 3.0)], None),
    ),
    "delete": (lambda s, k, m, t: s.delete(k, m, t, TTL), lambda _: ([], NOT_FOUND)),
}
# A flag's add writes 1 and its delete 0 (the remembered miss), both with put_strings.
FLAG_WRITES: dict[str, tuple[Step, Callable[[State], State]]] = {
    "add": (
        lambda s, k, m, t: s.put_strings([(k, m, b"1")], t, TTL),
        lambda _: (b"1", None),
    ),
    "delete": (
        lambda s, k, m, t: s.put_strings([(k, m, b"0")], t, TTL),
        lambda _: (b"0", None),
    ),
}
WRITES = {"hash": HASH_WRITES, "zset": SET_WRITES, "flag": FLAG_WRITES}
SEEDS: dict[str, State] = {
    "hash": ({b"v": b"old"}, None),
    "zset": ([(b"m", 0.0), (b"n", 5.0)], None),
    "flag": (b"0", None),
}
EMPTY = {"hash": {}, "zset": [], "flag": None}
PAIRS = [
    ("hash", "add-A", "add-B"),
    ("hash", "add-A", "delete"),
    ("hash", "delete", "add-B"),
    ("zset", "add-1", "add-2"),
    ("zset", "add-1", "remove"),
    ("zset", "replace", "add-2"),
    ("zset", "remove", "replace"),
    ("zset", "add-1", "delete"),
    ("zset", "delete", "add-2"),
    ("flag", "add", "delete"),
    ("flag", "delete", "add"),
    ("flag", "add", "add"),
]
# Every order of A's claim (Ac) and step (Aw) with B's, each claim before its step.
ORDERS = sorted(
    {
        order
        for order in itertools.permutations(["Ac", "Aw", "Bc", "Bw"])
        if order.index("Ac") < order.index("Aw") and order.index("Bc") < order.index("Bw")
    }
)


def _keys(name: str) -> tuple[bytes, bytes]:
    return f"racing:{name}".encode(), f"racing:not-found:{name}".encode()


def _state(raw: RawView, kind: str, key: bytes, marker: bytes) -> tuple[Any, Any]:
    read = {"hash": raw.hgetall, "zset": raw.zrange, "flag": raw.get}[kind]
    return read(key), raw.get(marker)


async def _seed(store: Any, kind: str, key: bytes, marker: bytes) -> None:
    """What Redis holds before the race (``SEEDS``): an older hash, a set of two members,
    or a flag's remembered miss."""
    if kind == "hash":
        await claims.put_hashes(store, [(key, marker, {b"v": b"old"})], TTL)
    elif kind == "flag":
        await claims.put_strings(store, [(key, marker, b"0")], TTL)
    else:
        await claims.put_sorted_set(store, key, marker, [("m", 0.0), ("n", 5.0)], TTL)


@pytest.mark.parametrize(("kind", "first", "second"), PAIRS, ids=["-".join(p) for p in PAIRS])
async def test_two_writes_in_any_order(side: Side, kind: str, first: str, second: str) -> None:
    """Writes that did not overlap leave the later one's result; overlapping ones leave
    neither key nor marker, whichever commit to the fallback came last."""
    store, raw = side
    writes = WRITES[kind]
    seed, after_a, after_b = SEEDS[kind], writes[first][1], writes[second][1]
    wrong = {}
    for order in ORDERS:
        key, marker = _keys(f"{kind}-{first}-{second}-{''.join(order)}")
        await _seed(store, kind, key, marker)
        tokens = {"A": lease_token(), "B": lease_token()}
        steps = {"A": writes[first][0], "B": writes[second][0]}
        for who, what in order:
            if what == "c":
                await store.claim([marker], tokens[who])
            else:
                await steps[who](store, key, marker, tokens[who])
        if order == ("Ac", "Aw", "Bc", "Bw"):
            expected = after_b(after_a(seed))
        elif order == ("Bc", "Bw", "Ac", "Aw"):
            expected = after_a(after_b(seed))
        else:
            expected = (EMPTY[kind], None)
        found = _state(raw, kind, key, marker)
        if found != expected:
            wrong["-".join(order)] = f"{found} != {expected}"
    assert not wrong, wrong


async def test_a_batch_drops_only_the_entries_whose_claim_was_taken(side: Side) -> None:
    """put_hashes writes each entry still under its claim and drops the one another took."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3) = _keys("batch-a"), _keys("batch-b"), _keys("batch-c")
    mine, theirs = lease_token(), lease_token()
    await store.claim([m1, m2, m3], mine)
    await store.claim([m2], theirs)
    await store.put_hashes(
        [(k1, m1, {b"v": b"1"}), (k2, m2, {b"v": b"2"}), (k3, m3, {})], mine, TTL
    )
    assert [_state(raw, "hash", k, m) for k, m in ((k1, m1), (k2, m2))] == [
        ({b"v": b"1"}, None),
        ({}, None),
    ]
    await store.put_hashes([(k2, m2, {b"v": b"3"})], theirs, TTL)
    assert _state(raw, "hash", k2, m2) == ({}, None)  # its claim was dropped with the key


async def test_a_claim_ends_a_readers_lease(side: Side) -> None:
    """A fill whose lease a writer's claim overtook writes nothing; the write stands."""
    store, raw = side
    key, marker = _keys("lease-then-claim")
    reader, writer = lease_token(), lease_token()
    assert await store.lease([marker], reader) == [None]
    await store.claim([marker], writer)
    await store.fill_hashes([(key, marker, {b"v": b"old"})], reader, TTL)
    assert _state(raw, "hash", key, marker) == ({}, writer)
    await store.put_hashes([(key, marker, {b"v": b"new"})], writer, TTL)
    assert _state(raw, "hash", key, marker) == ({b"v": b"new"}, None)


@pytest.mark.parametrize("fill_first", [True, False], ids=["fill-first", "write-first"])
async def test_a_reader_between_two_overlapping_writes_fills_nothing_that_stays(
    side: Side, fill_first: bool
) -> None:
    """A's step dropped the marker B had claimed; a reader leases and fills from a
    fallback that may predate B's commit; B's step then drops the key and the marker."""
    store, raw = side
    key, marker = _keys(f"between-{fill_first}")
    a, b, reader = lease_token(), lease_token(), lease_token()
    await store.claim([marker], a)
    await store.claim([marker], b)
    await store.put_hashes([(key, marker, {b"v": b"A"})], a, TTL)
    assert await store.lease([marker], reader) == [None]
    if fill_first:
        await store.fill_hashes([(key, marker, {b"v": b"A"})], reader, TTL)
        await store.put_hashes([(key, marker, {b"v": b"B"})], b, TTL)
    else:
        await store.put_hashes([(key, marker, {b"v": b"B"})], b, TTL)
        await store.fill_hashes([(key, marker, {b"v": b"A"})], reader, TTL)
    assert _state(raw, "hash", key, marker) == ({}, None)


@pytest.mark.parametrize("delete", [False, True], ids=["add", "delete"])
async def test_a_lapsed_claim_drops_the_key_and_the_readers_lease(side: Side, delete: bool) -> None:
    """A write whose claim lapsed (a slow fallback write) and a reader leased meanwhile
    writes nothing: it drops the key and the lease, and the reader's fill writes nothing."""
    store, raw = side
    key, marker = _keys(f"lapsed-{delete}")
    await _seed(store, "hash", key, marker)
    writer, reader = lease_token(), lease_token()
    await store.claim([marker], writer)
    raw.delete(marker)  # the claim lapsed, as after LEASE_SECONDS
    raw.delete(key)  # and K expired
    assert await store.lease([marker], reader) == [None]
    if delete:
        await store.delete(key, marker, writer, TTL)
    else:
        await store.put_hashes([(key, marker, {b"v": b"new"})], writer, TTL)
    await store.fill_hashes([(key, marker, {b"v": b"old"})], reader, TTL)
    assert _state(raw, "hash", key, marker) == ({}, None)
