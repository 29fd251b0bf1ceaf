"""The ``RedisSide`` contract of the string operations flags use (``get_strings``,
``get_or_lease``, ``fill_strings``, ``put_strings``), over InProcessRedis, RedisStore
(auto-pipelined or not) and ClusterStore, read back through a ``RawView``."""

from __future__ import annotations

import asyncio

import pytest

from dbdaora.exceptions import BadDataError
from dbdaora.lease import LEASE_SECONDS, NOT_FOUND, lease_token
from tests.contract.conftest import Side
from tests.support import claims
from tests.support.raw import RawView

TTL = 60


def _keys(name: str) -> tuple[bytes, bytes]:
    return f"flag:{name}".encode(), f"flag:not-found:{name}".encode()


def _assert_ttl(raw: RawView, key: bytes, seconds: float) -> None:
    left = raw.ttl(key)
    assert left is not None and seconds - 3 < left <= seconds, left


async def test_get_strings_answers_key_by_key(side: Side) -> None:
    """get_strings is each key's string, in order, None where absent."""
    store, _ = side
    (a, ma), (b, mb) = _keys("a"), _keys("b")
    await claims.put_strings(store, [(a, ma, b"1"), (b, mb, b"0")], TTL)
    assert await store.get_strings([b, b"flag:absent", a, b]) == [b"0", None, b"1", b"0"]
    assert await store.get_strings([]) == []


async def test_get_or_lease_on_a_hit_takes_no_lease(side: Side) -> None:
    """A hit (``1`` or ``0``) answers (value, None) and leaves the marker absent."""
    store, raw = side
    (a, ma), (b, mb) = _keys("hit-a"), _keys("hit-b")
    await claims.put_strings(store, [(a, ma, b"1"), (b, mb, b"0")], TTL)
    assert await store.get_or_lease(a, ma, lease_token()) == (b"1", None)
    assert await store.get_or_lease(b, mb, lease_token()) == (b"0", None)
    assert not raw.exists(ma) and not raw.exists(mb)


async def test_get_or_lease_on_a_miss(side: Side) -> None:
    """A miss answers (None, before): None with the lease taken, else the marker found."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3) = _keys("m1"), _keys("m2"), _keys("m3")
    token, other = lease_token(), lease_token()
    await store.lease([m2], other)
    raw.set(m3, NOT_FOUND)
    assert await store.get_or_lease(k1, m1, token) == (None, None)
    assert await store.get_or_lease(k2, m2, token) == (None, other)
    assert await store.get_or_lease(k3, m3, token) == (None, NOT_FOUND)
    assert [raw.get(m) for m in (m1, m2, m3)] == [token, other, NOT_FOUND]
    _assert_ttl(raw, m1, LEASE_SECONDS)


async def test_fill_strings_writes_only_under_the_callers_lease(side: Side) -> None:
    """fill_strings sets each leased key with the TTL (or none) and drops its marker;
    keys whose marker is absent or another's are left alone."""
    store, raw = side
    (k1, m1), (k2, m2), (k3, m3), (k4, m4) = (_keys(f"f{i}") for i in range(4))
    token, other = lease_token(), lease_token()
    await store.lease([m1, m2], token)
    await store.lease([m4], other)
    await store.fill_strings([(k1, m1, b"1"), (k3, m3, b"1"), (k4, m4, b"1")], token, TTL)
    await store.fill_strings([(k2, m2, b"0")], token, None)
    assert [raw.get(k) for k in (k1, k2, k3, k4)] == [b"1", b"0", None, None]
    _assert_ttl(raw, k1, TTL)
    assert raw.ttl(k2) is None
    assert not raw.exists(m1) and not raw.exists(m2) and raw.get(m4) == other


async def test_put_strings_writes_under_the_claim(side: Side) -> None:
    """put_strings replaces each key (``0`` over ``1`` and back) with the TTL, no marker."""
    store, raw = side
    (a, ma), (b, mb) = _keys("p-a"), _keys("p-b")
    await claims.put_strings(store, [(a, ma, b"1"), (b, mb, b"1")], TTL)
    await claims.put_strings(store, [(a, ma, b"0")], TTL)
    await claims.put_strings(store, [(b, mb, b"1")], None)
    assert (raw.get(a), raw.get(b)) == (b"0", b"1")
    _assert_ttl(raw, a, TTL)
    assert raw.ttl(b) is None
    assert raw.all_keys() == {a, b}


async def test_put_strings_drops_key_and_marker_where_the_claim_is_gone(side: Side) -> None:
    """Where another write claimed the marker since, the key and the marker are dropped."""
    store, raw = side
    (a, ma), (b, mb) = _keys("lost-a"), _keys("lost-b")
    await claims.put_strings(store, [(a, ma, b"1")], TTL)
    mine, theirs = lease_token(), lease_token()
    await store.claim([ma, mb], mine)
    await store.claim([ma], theirs)
    await store.put_strings([(a, ma, b"0"), (b, mb, b"1")], mine, TTL)
    assert not raw.exists(a) and not raw.exists(ma)
    assert raw.get(b) == b"1" and not raw.exists(mb)


@pytest.mark.parametrize("write", ["put", "claim"])
async def test_a_write_after_the_lease_beats_the_fill(side: Side, write: str) -> None:
    """A fill whose lease a write's claim ended writes nothing over that write."""
    store, raw = side
    key, marker = _keys(f"race-{write}")
    token = lease_token()
    assert await store.get_or_lease(key, marker, token) == (None, None)
    if write == "put":
        await claims.put_strings(store, [(key, marker, b"0")], TTL)
    else:
        await store.claim([marker], lease_token())
    await store.fill_strings([(key, marker, b"1")], token, TTL)
    assert raw.get(key) == (b"0" if write == "put" else None)


async def test_a_key_of_another_type_is_bad_data(side: Side) -> None:
    """GET of a hash is Redis's WRONGTYPE: BadDataError, as for every read."""
    store, raw = side
    key, marker = _keys("wrong")
    raw.hset(key, b"f", b"v")
    with pytest.raises(BadDataError):
        await store.get_strings([key])
    with pytest.raises(BadDataError):
        await store.get_or_lease(key, marker, lease_token())
    await claims.put_strings(store, [(key, marker, b"1")], TTL)
    assert raw.get(key) == b"1"


async def test_concurrent_reads_share_round_trips(side: Side) -> None:
    """Many concurrent string reads answer each its own key."""
    store, _ = side
    items = [(*_keys(f"c{i}"), b"1" if i % 2 else b"0") for i in range(20)]
    await claims.put_strings(store, items, TTL)
    answers = await asyncio.gather(*(store.get_strings([key]) for key, _, _ in items))
    assert [answer[0] for answer in answers] == [value for _, _, value in items]
