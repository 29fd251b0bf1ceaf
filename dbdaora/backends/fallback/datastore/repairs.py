# mypy: disallow-untyped-calls=False
# (google-cloud-datastore ships py.typed but leaves most of its API unannotated.)
"""Repair records in Datastore: Redis keys a write could not update, with their stamps.

One entity per key, of kind ``dbdaora_repair``, named by the key in hex, with one
property, ``stamp``. All of them sit under one parent (``dbdaora_repair/all``), so
that the query reading them is an ancestor query: strongly consistent, and served
by the built-in key index. Each function runs in the store's pool, with the
keyword arguments of the next RPC (``rpc()``: its deadline, no retries).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Sequence
from typing import Any

from google.cloud import datastore

from dbdaora.backends.fallback.protocol import Repair

KIND = "dbdaora_repair"

Rpc = Callable[[], dict[str, Any]]


def repair_key(client: datastore.Client, key: bytes | None = None) -> datastore.Key:
    """The record of ``key``, or with None the parent of every record."""
    path = [KIND, "all"] + ([] if key is None else [KIND, key.hex()])
    found: datastore.Key = client.key(*path)
    return found


def add(client: datastore.Client, keys: Sequence[bytes], rpc: Rpc) -> None:
    """Put a record for each key, all with one new stamp, in one commit."""
    stamp = random.getrandbits(63)
    records = [datastore.Entity(repair_key(client, key)) for key in dict.fromkeys(keys)]
    for record in records:
        record["stamp"] = stamp
    client.put_multi(records, **rpc())


def read(client: datastore.Client, limit: int, rpc: Rpc) -> list[Repair]:
    query = client.query(kind=KIND, ancestor=repair_key(client))
    return [
        (bytes.fromhex(record.key.name), record["stamp"])
        for record in query.fetch(limit=limit, **rpc())
    ]


def clear(client: datastore.Client, records: Sequence[Repair], rpc: Rpc) -> None:
    """Delete the records whose stamp is still the one given, in one transaction."""
    stamps = {key.hex(): stamp for key, stamp in records}
    transaction = client.transaction()
    try:
        transaction.begin(**rpc())
        keys = [repair_key(client, key) for key, _ in records]
        for record in client.get_multi(keys, transaction=transaction, **rpc()):
            if record.get("stamp") == stamps[record.key.name]:
                transaction.delete(record.key)
        transaction.commit(**rpc())
    except BaseException:
        if transaction.id is not None:
            with contextlib.suppress(Exception):
                transaction.rollback(**rpc())
        raise
