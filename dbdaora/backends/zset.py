"""Sorted-set ordering and range rules, as Redis applies them.

The in-process store keeps its sets with these, and the mapper answers a range
from freshly read fallback data with them, so both agree with ZRANGE.
"""

from __future__ import annotations

from collections.abc import Iterable

Pairs = list[tuple[bytes, float]]


def ordered(pairs: Iterable[tuple[bytes, float]], *, reverse: bool = False) -> Pairs:
    """By score, ties by member bytes; ``reverse`` flips both as ZRANGE REV does."""
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]), reverse=reverse)


def by_rank(pairs: Pairs, start: int, stop: int) -> Pairs:
    """ZRANGE's index rule: negative counts from the end, ``stop`` is inclusive."""
    size = len(pairs)
    if start < 0:
        start += size
    if stop < 0:
        stop += size
    start = max(start, 0)
    if start > stop or start >= size:
        return []
    return pairs[start : min(stop, size - 1) + 1]


def by_score(
    pairs: Pairs, low: float, high: float, *, reverse: bool, offset: int, count: int | None
) -> Pairs:
    """ZRANGE BYSCORE over ``pairs`` already in the order asked, with LIMIT."""
    inside = [pair for pair in pairs if low <= pair[1] <= high]
    end = None if count is None or count < 0 else offset + count
    return inside[offset:end]
