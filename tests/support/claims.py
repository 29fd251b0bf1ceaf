"""A store write's two steps in one call (the claim, then the write under it), for tests
that set up Redis state through a store. Between the two, a real write commits to the
fallback (``dbdaora.lease``); these tests have none."""

from __future__ import annotations

from typing import Any

from dbdaora.lease import lease_token


async def put_hashes(store: Any, items: list[tuple[bytes, bytes, Any]], ttl: int | None) -> None:
    token = lease_token()
    await store.claim([marker for _, marker, _ in items], token)
    await store.put_hashes(items, token, ttl)


async def put_sorted_set(
    store: Any, key: bytes, marker: bytes, members: list[tuple[str, float]], ttl: int | None
) -> None:
    token = lease_token()
    await store.claim([marker], token)
    await store.put_sorted_set(key, marker, members, token, ttl)


async def delete(store: Any, key: bytes, marker: bytes, ttl: int | None) -> None:
    token = lease_token()
    await store.claim([marker], token)
    await store.delete(key, marker, token, ttl)


async def remove_members(store: Any, key: bytes, marker: bytes, members: list[str]) -> None:
    token = lease_token()
    await store.claim([marker], token)
    await store.remove_members(key, marker, members, token)


async def add_members(
    store: Any,
    key: bytes,
    marker: bytes,
    members: list[tuple[str, float]],
    ttl: int | None,
    max_size: int | None,
    *,
    created: bool,
) -> None:
    token = lease_token()
    await store.claim([marker], token)
    await store.add_members(key, marker, members, ttl, max_size, token=token, created=created)


async def put_strings(store: Any, items: list[tuple[bytes, bytes, bytes]], ttl: int | None) -> None:
    token = lease_token()
    await store.claim([marker for _, marker, _ in items], token)
    await store.put_strings(items, token, ttl)
