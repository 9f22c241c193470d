"""Timestamp and duration arithmetic of a filter, folded into one comparison of the timestamp column.

Every timestamp or duration expression a filter may hold is `coefficient * column + offset_ns` (CEL's nanosecond
precision, exact integers), so `stageTimestamp > timestamp('...') - duration('1h')` becomes `column > bound`.
The column holds microseconds; the bound is rounded in the direction that leaves every answer unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apiserver.registry.auditlogquery.filter.literals import (
    MAX_DURATION_NS,
    MAX_TIMESTAMP_NS,
    MIN_TIMESTAMP_NS,
    NANOS_PER_MICRO,
)

# What a DateTime64(6) column can hold (ClickHouse's range; events outside it are refused at ingest).
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
COLUMN_MIN_US = (datetime(1900, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
COLUMN_MAX_US = (datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)

# CEL operator → Python comparison, and the operator that holds with the sides swapped.
COMPARE: Mapping[str, Callable[[int, int], bool]] = {
    "_==_": operator.eq,
    "_!=_": operator.ne,
    "_<_": operator.lt,
    "_<=_": operator.le,
    "_>_": operator.gt,
    "_>=_": operator.ge,
}
_MIRRORED = {"_<_": "_>_", "_<=_": "_>=_", "_>_": "_<_", "_>=_": "_<=_", "_==_": "_==_", "_!=_": "_!=_"}


@dataclass(frozen=True)
class Linear:
    """A timestamp or duration: `coefficient * column + offset_ns` (column: a timestamp column, or none)."""

    kind: str  # timestamp | duration
    offset_ns: int
    column: str | None = None
    coefficient: int = 0


def in_range(value: Linear) -> Linear:
    """CEL errors when a timestamp or duration leaves its range: raise ValueError if `value` could, for any event."""
    if value.kind == "timestamp":
        low, high = MIN_TIMESTAMP_NS, MAX_TIMESTAMP_NS
    else:
        low, high = -MAX_DURATION_NS, MAX_DURATION_NS
    ends = [value.offset_ns + value.coefficient * us * NANOS_PER_MICRO for us in (COLUMN_MIN_US, COLUMN_MAX_US)]
    if not all(low <= end <= high for end in ends):
        raise ValueError(f"this {value.kind} is outside CEL's range (years 1 to 9999, durations up to 10000 years)")
    return value


def combine(kind: str, left: Linear, right: Linear, sign: int) -> Linear:
    """`left + right` (sign 1) or `left - right` (sign -1), of CEL type `kind`."""
    if left.column and right.column and left.column != right.column:
        raise ValueError("arithmetic mixing two different time fields is not supported")
    return in_range(
        Linear(
            kind,
            left.offset_ns + sign * right.offset_ns,
            left.column or right.column,
            left.coefficient + sign * right.coefficient,
        )
    )


@dataclass(frozen=True)
class Bound:
    """`column OP fromUnixTimestamp64Micro(micros)`: OP a CEL comparison operator."""

    column: str
    operator: str
    micros: int


def compare(operator_name: str, left: Linear, right: Linear) -> Bound | bool:
    """`left OP right` as a bound on the column, or the answer itself when it is the same for every event."""
    coefficient = left.coefficient - right.coefficient
    bound = right.offset_ns - left.offset_ns  # left OP right  <=>  coefficient * column OP bound
    column = left.column or right.column
    if coefficient == 0 or column is None:
        return COMPARE[operator_name](0, bound)
    if coefficient not in (1, -1):
        raise ValueError("compare stageTimestamp itself, not a multiple of it")
    if coefficient == -1:
        operator_name, bound = _MIRRORED[operator_name], -bound
    # column_us * 1000 OP bound_ns, with the bound rounded to whole microseconds so the result is unchanged.
    floor_us, below = divmod(bound, NANOS_PER_MICRO)
    if operator_name in ("_==_", "_!=_") and below:
        return operator_name == "_!=_"  # the column has no sub-microsecond part
    micros = floor_us + 1 if below and operator_name in ("_>=_", "_<_") else floor_us
    if not COLUMN_MIN_US <= micros <= COLUMN_MAX_US:
        # Beyond what the column can hold: any stored value gives the answer for all of them.
        return COMPARE[operator_name](COLUMN_MIN_US if micros > COLUMN_MAX_US else COLUMN_MAX_US, micros)
    return Bound(column, operator_name, micros)
