"""spec.startTime / spec.endTime: RFC3339 (any offset) or `now` / `now-<n><s|m|h|d|w>`, resolved once against
one clock reading into an absolute window [start, end) in UTC microseconds, checked against the maximum.

Relative times are resolved only for the first page; later pages reuse the window their cursor carries.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from apiserver.auditlogquery.errors import FieldError, InvalidQuery

START_FIELD = "spec.startTime"
END_FIELD = "spec.endTime"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Durations are shown in days at most: "45d" reads better than "6w3d".
_UNIT_LENGTHS = tuple((unit, timedelta(**{_UNITS[unit]: 1})) for unit in "dhms")
_DURATION = re.compile(r"(\d{1,12})([smhdw])")
_RELATIVE = re.compile(r"now(?:-(\d{1,12})([smhdw]))?")
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
# The split hint lists the windows to send; past this many it shows the first ones and counts the rest.
_MAX_LISTED_SPLITS = 3
SYNTAX_HELP = "use RFC3339 with an offset (2026-11-28T10:00:00Z, 2026-11-28T11:00:00+01:00), `now`, or `now-<n><unit>`"
SYNTAX_HELP += " with unit s, m, h, d or w (now-30m, now-7d)"


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
    return (_EPOCH + us * _MICROSECOND).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_duration(text: str) -> timedelta:
    """`<n><s|m|h|d|w>`, e.g. `30d` (the --max-query-window flag and relative times share this syntax)."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration: write <n><unit> with unit s, m, h, d or w, e.g. 30d")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def format_duration(d: timedelta) -> str:
    """The shortest exact `1d12h30m` form (sub-second remainders are shown as seconds with a fraction)."""
    parts = []
    rest = d
    for unit, length in _UNIT_LENGTHS:
        count, rest = divmod(rest, length)
        if count:
            parts.append(f"{count}{unit}")
    if rest:
        parts.append(f"{rest.total_seconds():g}s")
    return "".join(parts) or "0s"


def parse_time(text: str, now: datetime) -> datetime:
    """One spec time as an aware datetime; ValueError with the fix when it is neither form."""
    relative = _RELATIVE.fullmatch(text)
    if relative is not None:
        if relative[1] is None:
            return now
        try:
            return now - timedelta(**{_UNITS[relative[2]]: int(relative[1])})
        except OverflowError:
            raise ValueError(f"now-{relative[1]}{relative[2]} reaches before year 1") from None
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
    bounds = [*range(start_us, end_us, max_us), end_us]
    windows = [f"[{format_time(a)}, {format_time(b)})" for a, b in itertools.pairwise(bounds)]
    if len(windows) <= _MAX_LISTED_SPLITS:
        return " and ".join(windows) + " separately"
    listed = ", ".join(windows[:_MAX_LISTED_SPLITS])
    more = len(windows) - _MAX_LISTED_SPLITS
    return f"{listed} and {more} more windows of at most {format_duration(max_us * _MICROSECOND)}"


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
