"""Durations, written as Go writes them: the one parser and formatter of the project.

kube clients (client-go's `?timeout=`, kubectl's `--request-timeout`) and every Kubernetes server flag write
durations with Go's `time.Duration`: `1m30s`, `1h0m0s`, `500ms`, `1.5s`, `-1.5h`, `1h2m3.5s`, units ns, us (µs),
ms, s, m, h, one number per unit, and a bare `0`. `parse_ns` reads exactly what Go's `time.ParseDuration` reads
(grammar, int64-nanosecond range, and its rounding of fractions), so a value client-go sends is never refused.

One extension, where days are the natural unit (relative times such as `now-7d` and `--max-query-window=30d`):
with `days=True` the units `d` (24h) and `w` (7d) are accepted as well. Go has neither.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta
from fractions import Fraction

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
WEEK = 7 * DAY
MAX_NS = 2**63 - 1  # Go's time.Duration is an int64 of nanoseconds
MIN_NS = -(2**63)

GO_UNITS = {"ns": NANOSECOND, "us": MICROSECOND, "µs": MICROSECOND, "μs": MICROSECOND, "ms": MILLISECOND}
GO_UNITS |= {"s": SECOND, "m": MINUTE, "h": HOUR}
DAY_UNITS = GO_UNITS | {"d": DAY, "w": WEEK}
# One component: digits, an optional fraction, then the unit, which (as in Go) is every character up to the next
# digit or dot; an unknown unit is reported by name.
_COMPONENT = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_UNSIGNED_63 = 2**63
SYNTAX = "write it as Go does, e.g. 1h30m, 90s, 1.5s or 500ms (units ns, us, ms, s, m, h)"
DAY_SYNTAX = "write it as Go does, e.g. 1h30m, 90s or 500ms (units ns, us, ms, s, m, h), or in days: 7d, 2w, 1d12h"


class DurationError(ValueError):
    """Not a duration; the message quotes the text and says how to write one."""


def _components(text: str, units: dict[str, int]) -> tuple[bool, list[tuple[str, str | None, int]]]:
    """The sign and the (integer digits, fraction digits, unit length) of each component, as Go's grammar has
    them: `[-+]?([0-9]*(\\.[0-9]*)?[a-z]+)+`, or a bare `0`."""
    syntax = DAY_SYNTAX if units is DAY_UNITS else SYNTAX
    body = text[1:] if text[:1] in ("-", "+") else text
    negative = text[:1] == "-"
    if body == "0":
        return negative, []
    if not body:
        raise DurationError(f"{text!r} is not a duration: {syntax}")
    parts: list[tuple[str, str | None, int]] = []
    position = 0
    while position < len(body):
        match = _COMPONENT.match(body, position)
        assert match is not None  # every part of the pattern may be empty
        whole, fraction, unit = match.groups()
        if not whole and not fraction:
            raise DurationError(f"{text!r} is not a duration: {syntax}")
        if not unit:
            raise DurationError(f"{text!r} is not a duration: a unit is missing; {syntax}")
        if unit not in units:
            raise DurationError(f"{text!r} is not a duration: unknown unit {unit!r}; {syntax}")
        parts.append((whole, fraction, units[unit]))
        position = match.end()
    return negative, parts


def _out_of_range(text: str) -> DurationError:
    return DurationError(f"{text!r} is out of range: a duration is at most {format_ns(MAX_NS)} either way")


def parse_ns(text: str, *, days: bool = False) -> int:
    """Nanoseconds, exactly as Go's time.ParseDuration reads `text` (with `days`, also d and w units)."""
    negative, parts = _components(text, DAY_UNITS if days else GO_UNITS)
    total = 0
    for whole, fraction, unit in parts:
        value = int(whole or "0")
        if value > _UNSIGNED_63 // unit:
            raise _out_of_range(text)
        value *= unit
        if fraction:
            # Go keeps at most 19 significant fraction digits and scales them in float64: so do we, to the bit.
            digits = fraction.lstrip("0")
            kept = fraction[: len(fraction) - len(digits) + _kept_digits(digits)]
            scale = 1.0
            for _ in kept:
                scale *= 10
            value += int(float(int(kept or "0")) * (float(unit) / scale))
            if value > _UNSIGNED_63:
                raise _out_of_range(text)
        total += value
        if total > _UNSIGNED_63:
            raise _out_of_range(text)
    if not negative and total > MAX_NS:
        raise _out_of_range(text)
    return -total if negative else total


def _kept_digits(significant: str) -> int:
    """How many of a fraction's significant digits Go's leadingFraction accumulates before uint64 overflow."""
    value = 0
    for count, digit in enumerate(significant):
        if value > (MAX_NS // 10):
            return count
        candidate = value * 10 + int(digit)
        if candidate > _UNSIGNED_63:
            return count
        value = candidate
    return len(significant)


def parse_exact(text: str, *, days: bool = False) -> Fraction:
    """The exact value in nanoseconds, without Go's range and rounding (CEL durations reach 10,000 years)."""
    negative, parts = _components(text, DAY_UNITS if days else GO_UNITS)
    total = sum((Fraction(f"{whole or '0'}.{fraction or '0'}") * unit for whole, fraction, unit in parts), Fraction(0))
    return -total if negative else total


def parse_timedelta(text: str, *, days: bool = False) -> timedelta:
    """`parse_ns` as a timedelta (whose resolution is a microsecond: nanoseconds are truncated toward zero)."""
    ns = parse_ns(text, days=days)
    micros = abs(ns) // MICROSECOND
    return timedelta(microseconds=-micros if ns < 0 else micros)


def parse_seconds(text: str) -> float:
    return parse_ns(text) / SECOND


def to_ns(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * SECOND + d.microseconds * MICROSECOND


def _fraction(value: int, digits: int) -> str:
    """`.5` for value 5 of 1 digit, trailing zeros dropped; empty for 0 (Go's fmtFrac)."""
    text = f"{value:0{digits}d}".rstrip("0")
    return f".{text}" if text else ""


def format_ns(ns: int) -> str:
    """Go's Duration.String(): `1h0m0s`, `1m30s`, `1.5s`, `500ms`, `1.5µs`, `0s`, `-1h30m0s`."""
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < SECOND:
        if u == 0:
            return "0s"
        if u < MICROSECOND:
            return f"{sign}{u}ns"
        if u < MILLISECOND:
            return f"{sign}{u // MICROSECOND}{_fraction(u % MICROSECOND, 3)}µs"
        return f"{sign}{u // MILLISECOND}{_fraction(u % MILLISECOND, 6)}ms"
    seconds, below = divmod(u, SECOND)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = f"{seconds}{_fraction(below, 9)}s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def format_timedelta(d: timedelta, *, days: bool = False) -> str:
    """Go's form of `d`; with `days`, the readable form for long windows: whole days as `Nd`, then the rest as Go
    writes it without its zero components (`30d`, `1d12h`, `1m30s`, `53.094117s`). Both read back unchanged."""
    ns = to_ns(d)
    if not days:
        return format_ns(ns)
    sign = "-" if ns < 0 else ""
    whole_days, rest = divmod(abs(ns), DAY)
    parts = [f"{whole_days}d"] if whole_days else []
    if rest:
        parts += [c for c in re.findall(r"[0-9.]+[^0-9.]+", format_ns(rest)) if float(re.sub(r"[^0-9.]", "", c))]
    return sign + ("".join(parts) or "0s")


def duration_flag(text: str) -> float:
    """An argparse type for a duration flag, written as Kubernetes flags are (`10s`, `1m30s`, `500ms`; a bare
    number is refused for its missing unit): seconds, 0 or more."""
    try:
        seconds = parse_seconds(text)
    except DurationError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; a duration flag needs 0 or more")
    return seconds


def flag_default(seconds: float) -> str:
    """A default in the form the flag takes, so that `--help` shows `10s` and argparse converts it like a value."""
    return format_ns(round(seconds * SECOND))
