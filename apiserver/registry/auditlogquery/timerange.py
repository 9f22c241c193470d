"""spec.startTime / spec.endTime: RFC3339 (any offset) or `now` / `now-<duration>`, resolved once against one clock
reading into an absolute window [start, end) in UTC microseconds, checked against the maximum.

The duration after `now-` is a Go duration (`now-1h30m`, `now-90s`), with days and weeks as an extension
(`now-7d`, `now-2w`). Relative times are resolved only for the first page; later pages reuse the window their
cursor carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from apiserver.machinery.fielderrors import FieldError
from apiserver.registry.auditlogquery.errors import InvalidQuery
from auditlog.durations import DurationError, format_timedelta, parse_timedelta

START_FIELD = "spec.startTime"
END_FIELD = "spec.endTime"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_RELATIVE = re.compile(r"now(?:-(.*))?", re.DOTALL)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
# The split hint lists the windows to send; past this many it shows the first ones and counts the rest.
_MAX_LISTED_SPLITS = 3
SYNTAX_HELP = "use RFC3339 with an offset (2026-11-28T10:00:00Z, 2026-11-28T11:00:00+01:00), `now`, or `now-<duration>`"
SYNTAX_HELP += " with a Go duration or days and weeks (now-30m, now-1h30m, now-7d, now-2w)"


@dataclass(frozen=True)
class TimeWindow:
    """An absolute window [start_us, end_us) in microseconds since the epoch, UTC."""

    start_us: int
    end_us: int

    @property
    def start(self) -> str:
        return format_time(self.start_us)

    @property
    def end(self) -> str:
        return format_time(self.end_us)


def to_us(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def format_time(us: int) -> str:
    """RFC3339 in UTC with microseconds, as effectiveStartTime/effectiveEndTime show it."""
    t = _EPOCH + us * _MICROSECOND
    return f"{t.year:04d}-{t:%m-%dT%H:%M:%S.%f}Z"  # %Y does not pad years before 1000 on every platform


def format_duration(d: timedelta) -> str:
    """A window length as error messages and the schema show it: `30d`, `1d12h`, `53.094117s`."""
    return format_timedelta(d, days=True)


def parse_time(text: str, now: datetime) -> datetime:
    """One spec time as an aware datetime; ValueError with the fix when it is neither form."""
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        if relative[1] is None:
            return now
        if relative[1][:1] in ("+", "-"):
            raise ValueError(f"not a time: write the duration after now- without a sign; {SYNTAX_HELP}")
        try:
            return now - parse_timedelta(relative[1], days=True)
        except DurationError as err:
            raise ValueError(f"not a time: {err}") from None
        except OverflowError:
            raise ValueError(f"now-{relative[1]} reaches before year 1") from None
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"not a time: {SYNTAX_HELP}")
    year, month, day, hour, minute, second = (int(match[i]) for i in range(1, 7))
    micros = int((match[7] or "0").ljust(6, "0")[:6])  # nanoseconds are truncated: storage keeps microseconds
    try:
        return datetime(year, month, day, hour, minute, second, micros, tzinfo=_zone(match))
    except ValueError as err:
        raise ValueError(f"not a valid date or time ({err})") from None


def _zone(match: re.Match[str]) -> timezone:
    if match[8]:
        return UTC
    hours, minutes = int(match[10]), int(match[11])
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {match[9]}{match[10]}:{match[11]} is out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return timezone(-offset if match[9] == "-" else offset)


def _split_hint(start_us: int, end_us: int, max_us: int) -> str:
    """The windows to send instead. Only the listed ones are built: a 0001 → 9999 window is 120,000 windows of
    30 days, whose strings once cost seconds of CPU before the 422."""
    count = -(-(end_us - start_us) // max_us)

    def window(i: int) -> str:
        return f"[{format_time(start_us + i * max_us)}, {format_time(min(start_us + (i + 1) * max_us, end_us))})"

    if count <= _MAX_LISTED_SPLITS:
        return " and ".join(window(i) for i in range(count)) + " separately"
    listed = ", ".join(window(i) for i in range(_MAX_LISTED_SPLITS))
    more = count - _MAX_LISTED_SPLITS
    return f"{listed} and {more:,} more windows of at most {format_duration(max_us * _MICROSECOND)}"


def resolve_window(start_text: str, end_text: str, now: datetime, max_window: timedelta) -> TimeWindow:
    """The absolute window of a first page; InvalidQuery names startTime/endTime and says what to change."""
    errors: list[FieldError] = []
    parsed: dict[str, datetime] = {}
    for field, text in ((START_FIELD, start_text), (END_FIELD, end_text)):
        try:
            parsed[field] = parse_time(text, now)
        except ValueError as err:
            errors.append(FieldError(field, "FieldValueInvalid", text, str(err)))
    if errors:
        raise InvalidQuery(errors)
    start_us, end_us = to_us(parsed[START_FIELD]), to_us(parsed[END_FIELD])
    if end_us <= start_us:
        detail = f"endTime ({format_time(end_us)}) must be after startTime ({format_time(start_us)})"
        raise InvalidQuery([FieldError(END_FIELD, "FieldValueInvalid", end_text, detail)])
    max_us = max_window // _MICROSECOND
    if end_us - start_us > max_us:
        length = format_duration((end_us - start_us) * _MICROSECOND)
        detail = (
            f"the window [{format_time(start_us)}, {format_time(end_us)}) is {length}; the maximum is "
            f"{format_duration(max_window)}: query {_split_hint(start_us, end_us, max_us)}"
        )
        raise InvalidQuery([FieldError(START_FIELD, "FieldValueInvalid", start_text, detail)])
    return TimeWindow(start_us, end_us)
