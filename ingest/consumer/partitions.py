"""Inserts grouped so that none writes to more partitions than ClickHouse allows in one insert block.

The events table is partitioned by day, and ClickHouse refuses an insert block that spans more than
`max_partitions_per_insert_block` partitions (100 by default: each partition written is a part of its own, so a
wide insert is many small parts). Live traffic spans one or two days per batch; an import of old logs or a hostile
EventList spans as many as it likes, and refused whole it would be retried forever. So a batch over the limit is
cut into inserts of whole days, at most MAX_PARTITIONS_PER_INSERT each: the default limit, kept, since raising it
only trades the refusal for slow merges and many parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")

MAX_PARTITIONS_PER_INSERT = 100


def by_partition(rows: Sequence[R], day: Callable[[R], str], limit: int = MAX_PARTITIONS_PER_INSERT) -> list[list[R]]:
    """`rows` as inserts of at most `limit` partitions each; one insert, in order, when they fit."""
    days: dict[str, list[R]] = {}
    for row in rows:
        days.setdefault(day(row), []).append(row)
    if len(days) <= limit:
        return [list(rows)] if rows else []
    groups = list(days.values())
    return [[row for group in groups[start : start + limit] for row in group] for start in range(0, len(groups), limit)]


def halves(rows: Sequence[R], day: Callable[[R], str]) -> tuple[list[R], list[R]] | None:
    """`rows` split into two inserts of about half the partitions each (for a store whose limit is lower than
    ours); None when they are all in one partition, which no limit refuses."""
    days = list(dict.fromkeys(day(row) for row in rows))
    if len(days) < 2:
        return None
    first = set(days[: len(days) // 2])
    return [r for r in rows if day(r) in first], [r for r in rows if day(r) not in first]
