"""The flag-model contract, run over every stack: 0.27's boolean layout in Redis (``1``,
``0`` as the remembered miss), read-through with the lease, writes under the claim."""

from __future__ import annotations

import pytest

from dbdaora import EntityNotFoundError, Session
from tests.support.models import Liked, Seen
from tests.support.raw import RawView

SEEN = Seen(user="ann", item=7)


def _assert_ttl(raw: RawView, key: bytes, seconds: float) -> None:
    left = raw.ttl(key)
    assert left is not None and seconds - 5 < left <= seconds, left


async def test_add_sets_the_flag_in_027s_layout(session: Session, raw: RawView) -> None:
    """add writes the fallback record and Redis ``1`` under <key_name>:<parts>, with the TTL."""
    seen = Seen.objects.using(session)
    await seen.add(SEEN, Seen(user="bob", item=1))
    assert raw.get(b"seen:ann:7") == b"1"
    _assert_ttl(raw, b"seen:ann:7", 60)
    assert raw.all_keys() == {b"seen:ann:7", b"seen:bob:1"}
    assert await session.fallback.get_many(Seen._meta, ["ann:7", "bob:1", "ann:8"]) == [
        SEEN,
        Seen(user="bob", item=1),
        None,
    ]
    assert await seen.exists("ann", 7)
    assert await seen.get("ann", 7) == SEEN
    assert await seen.get(user="ann", item=7) == SEEN


async def test_a_miss_is_remembered_as_0_with_the_ttl(session: Session, raw: RawView) -> None:
    """Nowhere: exists is False, get raises, and Redis holds ``0`` with the TTL, no marker."""
    seen = Seen.objects.using(session)
    assert not await seen.exists("ann", 1)
    with pytest.raises(EntityNotFoundError) as error:
        await seen.get("ann", 2)
    assert error.value.model == "Seen" and error.value.key == ("ann", 2)
    assert raw.get(b"seen:ann:1") == b"0" and raw.get(b"seen:ann:2") == b"0"
    _assert_ttl(raw, b"seen:ann:1", 60)
    assert raw.all_keys() == {b"seen:ann:1", b"seen:ann:2"}
    # The remembered miss answers without the fallback, until a write or its expiry.
    await session.fallback.put_many(Seen._meta, ["ann:1"], [Seen(user="ann", item=1)])
    assert not await seen.exists("ann", 1)
    await seen.add(Seen(user="ann", item=1))
    assert raw.get(b"seen:ann:1") == b"1"
    assert await seen.exists("ann", 1)


async def test_a_redis_miss_reads_through_and_fills(session: Session, raw: RawView) -> None:
    """A flag only the fallback holds reads as set, and Redis gets ``1`` with the TTL."""
    await session.fallback.put_many(Seen._meta, ["ann:7"], [SEEN])
    assert await Seen.objects.using(session).get("ann", 7) == SEEN
    assert raw.get(b"seen:ann:7") == b"1"
    _assert_ttl(raw, b"seen:ann:7", 60)
    assert not raw.exists(b"seen:not-found:ann:7")
    assert session.stats()["models"]["Seen"]["fallback_reads"] == 1


async def test_read_through_after_flushall(session: Session, raw: RawView) -> None:
    """Redis losing everything loses no flag: each reads again from the fallback."""
    seen = Seen.objects.using(session)
    await seen.add(SEEN, Seen(user="bob", item=1))
    await seen.delete("bob", 1)
    for key in raw.all_keys():
        raw.delete(key)
    assert await seen.exists_many([("ann", 7), ("bob", 1)]) == [True, False]
    assert raw.get(b"seen:ann:7") == b"1" and raw.get(b"seen:bob:1") == b"0"


async def test_delete_clears_the_flag_with_a_remembered_miss(
    session: Session, raw: RawView
) -> None:
    """delete removes the fallback record and leaves ``0`` with the TTL in Redis."""
    seen = Seen.objects.using(session)
    await seen.add(SEEN)
    await seen.delete("ann", 7)
    assert raw.get(b"seen:ann:7") == b"0"
    _assert_ttl(raw, b"seen:ann:7", 60)
    assert not raw.exists(b"seen:not-found:ann:7")
    assert await session.fallback.get_many(Seen._meta, ["ann:7"]) == [None]
    assert not await seen.exists("ann", 7)
    await seen.delete("never", 1)
    assert raw.get(b"seen:never:1") == b"0"


async def test_many_answer_in_order(session: Session) -> None:
    """get_many gives the set flags' entities, exists_many a bool per id, in the order asked."""
    seen, liked = Seen.objects.using(session), Liked.objects.using(session)
    await seen.add(SEEN, Seen(user="ann", item=9))
    await liked.add(Liked(id="x"))
    ids = [("ann", 9), ("zed", 1), ("ann", 7), ("ann", 9)]
    assert await seen.exists_many(ids) == [True, False, True, True]
    assert await seen.get_many(ids) == [Seen(user="ann", item=9), SEEN, Seen(user="ann", item=9)]
    assert await liked.exists_many(["y", "x"]) == [False, True]
    assert await liked.get_many(["x", "y"]) == [Liked(id="x")]
    assert await seen.get_many([]) == [] and await seen.exists_many([]) == []


async def test_027s_markers_read_as_not_found(session: Session, raw: RawView) -> None:
    """0.27's not-found marker (``<key_name>:not-found:<id>`` = ``1``) answers "not set"
    without asking the fallback, as ``0`` in the key does."""
    raw.set(b"liked:not-found:a", b"1")
    raw.set(b"liked:b", b"0")
    await session.fallback.put_many(Liked._meta, ["a", "b"], [Liked(id="a"), Liked(id="b")])
    liked = Liked.objects.using(session)
    assert await liked.exists_many(["a", "b"]) == [False, False]
    assert not await liked.exists("a")
    with pytest.raises(EntityNotFoundError):
        await liked.get("b")
    assert session.stats()["models"]["Liked"]["fallback_reads"] == 0


async def test_corrupt_keys_are_dropped_and_read_through(session: Session, raw: RawView) -> None:
    """A key holding neither ``1`` nor ``0``, or a hash, is replaced from the fallback."""
    await session.fallback.put_many(Liked._meta, ["a", "b"], [Liked(id="a"), Liked(id="b")])
    raw.set(b"liked:a", b"yes")
    raw.hset(b"liked:b", b"x", b"1")
    liked = Liked.objects.using(session)
    assert await liked.exists("a")
    assert await liked.exists_many(["b", "a", "c"]) == [True, True, False]
    assert raw.get(b"liked:a") == b"1" and raw.get(b"liked:b") == b"1"


async def test_counters(session: Session) -> None:
    """Set flags Redis holds count as hits; its misses and remembered misses (``0``) as
    misses, as a hash's not-found marker counts; unset flags as not found."""
    liked = Liked.objects.using(session)
    await liked.add(Liked(id="a"))
    await liked.exists_many(["a", "b"])
    await liked.exists("b")
    stats = session.stats()["models"]["Liked"]
    assert (stats["redis_hits"], stats["misses"], stats["not_found"]) == (1, 2, 2)
    assert (stats["fallback_reads"], stats["fallback_writes"]) == (1, 1)
