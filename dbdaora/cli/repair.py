"""``dbdaora repair`` and ``dbdaora inspect``: Redis copies against the fallback."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape

from dbdaora.backends import FallbackStore
from dbdaora.cli.compare import Verdict, judge_copy, judge_marker, records
from dbdaora.cli.loading import parts_of
from dbdaora.cli.raw import Copy, RawRedis
from dbdaora.exceptions import ValidationError
from dbdaora.lease import NOT_FOUND
from dbdaora.meta import ModelMeta


async def repair(
    meta: ModelMeta,
    raw: RawRedis,
    fallback: FallbackStore,
    *,
    dry_run: bool,
    advance: Callable[[int], None],
) -> Counter[Verdict]:
    """Compare every Redis key under the model's prefix with the fallback, and delete
    (unless ``dry_run``) the copies that differ or have no record.

    Markers count as copies: ``NOT_FOUND`` where the fallback has the record differs.
    A lease or a claim is left alone. Deleting is always safe: the next read fills
    the key from the fallback, under the lease protocol.
    """
    counts: Counter[Verdict] = Counter()
    data_prefix, marker_prefix = meta.redis_key(""), meta.marker_key("")
    async for page in raw.scan(data_prefix):
        copies = await raw.peek(page)
        named: list[tuple[Copy, str, tuple[Any, ...], bool]] = []
        for copy in copies:
            marker = copy.key.startswith(marker_prefix)
            name = copy.key[len(marker_prefix if marker else data_prefix) :].decode(
                errors="replace"
            )
            parts = parts_of(meta, name)
            if parts is not None:
                named.append((copy, name, parts, marker))
        unique = list(dict.fromkeys(name for _, name, _, _ in named))
        found = dict(zip(unique, await records(fallback, meta, unique), strict=True))
        stale: list[Copy] = []
        markers: list[Copy] = []
        for copy, name, parts, marker in named:
            record = found[name]
            verdict = (
                judge_marker(copy, record) if marker else judge_copy(meta, copy, parts, record)
            )
            counts[verdict] += 1
            if verdict in (Verdict.DIFFER, Verdict.NO_RECORD):
                (markers if marker and copy.kind == "string" else stale).append(copy)
        if not dry_run:
            await raw.delete([copy.key for copy in stale])
            for copy in markers:
                await raw.delete_if(copy.key, copy.value)
        advance(len(page))
    return counts


async def inspect(
    meta: ModelMeta, raw: RawRedis, fallback: FallbackStore, names: Sequence[str], out: Console
) -> None:
    """Print, for each record name: the Redis copy, its marker, the record and the verdict.

    Raises:
        ValidationError: a name that is no key of the model.
    """
    keyed = []
    for name in names:
        parts = parts_of(meta, name)
        if parts is None:
            fields = ":".join(field.name for field in meta.key_fields)
            raise ValidationError(
                f"{meta.name}: {name!r} is no key of the model (key parts: {fields})",
                model=meta.name,
                value=name,
            )
        keyed.append((name, parts))
    keys = [key for name, _ in keyed for key in (meta.redis_key(name), meta.marker_key(name))]
    copies = await raw.peek(keys)
    found = await records(fallback, meta, [name for name, _ in keyed])
    for (name, parts), copy, marker, record in zip(
        keyed, copies[0::2], copies[1::2], found, strict=True
    ):
        verdict = judge_copy(meta, copy, parts, record)
        if verdict is Verdict.ABSENT:
            verdict = judge_marker(marker, record)
        out.print(f"[bold]{meta.name} {escape(name)}[/]")
        out.print(f"  redis     {_describe(copy)}")
        out.print(f"  marker    {_describe(marker, marker=True)}")
        shown = "none" if record is None else escape(repr(record))
        out.print(f"  fallback  {shown}")
        out.print(f"  verdict   {verdict.value}")


def _describe(copy: Copy, *, marker: bool = False) -> str:
    key = escape(copy.key.decode(errors="replace"))
    if copy.kind == "none":
        return f"{key}: absent"
    ttl = "no expiry" if copy.ttl is None else f"ttl {copy.ttl:.0f} s"
    value = copy.value
    if copy.kind == "hash":
        shown = "  ".join(
            f"{field.decode(errors='replace')}={text.decode(errors='replace')!r}"
            for field, text in sorted(value.items())
        )
    elif copy.kind == "zset":
        shown = "  ".join(f"{member.decode(errors='replace')}={score:g}" for member, score in value)
    elif copy.kind == "string":
        shown = "NOT_FOUND" if marker and value == NOT_FOUND else value.decode(errors="replace")
    else:
        shown = copy.kind
    return f"{key} ({copy.kind}, {ttl}): {escape(shown)}"
