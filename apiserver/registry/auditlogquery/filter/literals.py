"""The constants a filter may hold that only fail at evaluation time in CEL: regexes, timestamps, durations.

The SQL has to mean what CEL means, so they are judged by cel-expr-python itself (RE2 for regexes, absl time
parsing for timestamps and durations) and rejected up front rather than erroring on every event. Timestamps and
durations are then exact integers of nanoseconds (CEL's precision), for constant folding in the translator.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cache

from cel_expr_python import cel

from auditlog.durations import parse_exact

NANOS_PER_MICRO = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# CEL's timestamp range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_NS = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * NANOS_PER_MICRO
MAX_TIMESTAMP_NS = (datetime(10000 - 1, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - _EPOCH) // timedelta(
    microseconds=1
) * NANOS_PER_MICRO + 999
MAX_DURATION_NS = 315_576_000_000 * 10**9 + 999_999_999  # about 10,000 years either way

_FRACTION = re.compile(r"[Tt]\d\d:\d\d:\d\d\.(\d+)")


@cache
def _probes() -> tuple[cel.Expression, cel.Expression, cel.Expression]:
    env = cel.NewEnv(variables={"s": cel.Type.STRING, "p": cel.Type.STRING})
    return env.compile("s.matches(p)"), env.compile("timestamp(s)"), env.compile("duration(s)")


def _evaluate(probe: cel.Expression, data: dict[str, str]) -> object:
    if any("\x00" in text for text in data.values()):
        # cel-expr-python cuts strings passed as data at a NUL; CEL itself would judge the whole text.
        raise ValueError("it contains a NUL character")
    value = probe.eval(data=data)
    if value.type() == cel.Type.ERROR:
        message = re.sub(r"^[A-Z_]+: ", "", str(value.value()))
        raise ValueError(message.removeprefix("invalid regular expression: "))
    return value.value()


def check_regex(pattern: str) -> None:
    """Raise ValueError saying why RE2 (CEL's and ClickHouse's engine) rejects `pattern`; ClickHouse refuses a NUL."""
    _evaluate(_probes()[0], {"s": "", "p": pattern})


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC3339 timestamp, as CEL's timestamp() reads it."""
    value = _evaluate(_probes()[1], {"s": text})
    assert isinstance(value, datetime)  # the probe's declared result type
    micros = (value - _EPOCH) // timedelta(microseconds=1)
    fraction = _FRACTION.search(text)
    below_micro = int(fraction.group(1)[6:9].ljust(3, "0")) if fraction else 0
    return micros * NANOS_PER_MICRO + below_micro


def duration_ns(text: str) -> int:
    """Nanoseconds of a duration like '1h30m' or '-1.5s', as CEL's duration() reads it."""
    _evaluate(_probes()[2], {"s": text})  # CEL's verdict on syntax and range comes first
    # CEL's duration syntax is Go's (without the µs spellings, which CEL refused above); its range is wider than
    # Go's int64 nanoseconds, so the exact value is read without Go's range.
    total = parse_exact(text)
    if total.denominator != 1:
        raise ValueError("durations have nanosecond precision")
    return int(total)
