"""The project's Go-duration parser and formatter against the cases of Go's own time.ParseDuration tests, with
properties over the whole int64 range; and kubectl's --request-timeout, which also takes whole seconds."""

from __future__ import annotations

import re
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditlog.durations import GO_UNITS as UNITS
from auditlog.durations import (
    HOUR,
    MICROSECOND,
    MILLISECOND,
    MINUTE,
    NANOSECOND,
    SECOND,
    DurationError,
)
from auditlog.durations import format_ns as format_duration
from auditlog.durations import parse_ns as parse_duration
from kubectl_activity.durations import parse_request_timeout

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1

# Go's src/time/time_test.go parseDurationTests (the valid ones) and parseDurationErrorTests.
GO_VALID = {
    "0": 0,
    "5s": 5 * SECOND,
    "30s": 30 * SECOND,
    "1478s": 1478 * SECOND,
    "-5s": -5 * SECOND,
    "+5s": 5 * SECOND,
    "-0": 0,
    "+0": 0,
    "5.0s": 5 * SECOND,
    "5.6s": 5 * SECOND + 600 * MILLISECOND,
    "5.s": 5 * SECOND,
    ".5s": 500 * MILLISECOND,
    "1.0s": SECOND,
    "1.00s": SECOND,
    "1.004s": SECOND + 4 * MILLISECOND,
    "1.0040s": SECOND + 4 * MILLISECOND,
    "100.00100s": 100 * SECOND + 1 * MILLISECOND,
    "10ns": 10 * NANOSECOND,
    "11us": 11 * MICROSECOND,
    "12µs": 12 * MICROSECOND,
    "12μs": 12 * MICROSECOND,
    "13ms": 13 * MILLISECOND,
    "14s": 14 * SECOND,
    "15m": 15 * MINUTE,
    "16h": 16 * HOUR,
    "3h30m": 3 * HOUR + 30 * MINUTE,
    "10.5s4m": 4 * MINUTE + 10 * SECOND + 500 * MILLISECOND,
    "-2m3.4s": -(2 * MINUTE + 3 * SECOND + 400 * MILLISECOND),
    "1h2m3s4ms5us6ns": HOUR + 2 * MINUTE + 3 * SECOND + 4 * MILLISECOND + 5 * MICROSECOND + 6,
    "39h9m14.425s": 39 * HOUR + 9 * MINUTE + 14 * SECOND + 425 * MILLISECOND,
    "52763797000ns": 52763797000,
    "0.3333333333333333333h": 20 * MINUTE,
    "9007199254740993ns": (1 << 53) + 1,
    "9223372036854775807ns": INT64_MAX,
    "9223372036854775.807us": INT64_MAX,
    "9223372036s854ms775us807ns": INT64_MAX,
    "-9223372036854775808ns": INT64_MIN,
    "-9223372036854775.808us": INT64_MIN,
    "-9223372036s854ms775us808ns": INT64_MIN,
    "-2562047h47m16.854775808s": INT64_MIN,
    "0.100000000000000000000h": 6 * MINUTE,
    "0.830103483285477580700h": 49 * MINUTE + 48 * SECOND + 372539827,
}
GO_INVALID = [
    "",
    "3",
    "-",
    "s",
    ".",
    "-.",
    ".s",
    "+.s",
    "1d",
    "\x85\x85",
    "\xffff",
    "hello \xffff world",
    "9223372036854775810ns",
    "9223372036854775808ns",
    "-9223372036854775809ns",
    "9223372036854776us",
    "3000000h",
    "9223372036854775.808us",
    "9223372036854ms775us808ns",
    "9223372036s854ms775us808ns",
]
# Go's Duration.String examples (src/time/time_test.go durationTests).
GO_STRINGS = {
    0: "0s",
    1: "1ns",
    1100: "1.1µs",
    2200 * MICROSECOND: "2.2ms",
    3300 * MILLISECOND: "3.3s",
    -(4 * MINUTE + 5 * SECOND): "-4m5s",
    4 * MINUTE + 5001 * MILLISECOND: "4m5.001s",
    5 * HOUR + 6 * MINUTE + 7001 * MILLISECOND: "5h6m7.001s",
    8 * MINUTE + 1: "8m0.000000001s",
    INT64_MAX: "2562047h47m16.854775807s",
    INT64_MIN: "-2562047h47m16.854775808s",
    90 * SECOND: "1m30s",
    HOUR: "1h0m0s",
}
GO_STRING_FORM = re.compile(r"^-?(0s|\d+(\.\d+)?(ns|µs|ms)|(\d+h)?(\d+m)?\d+(\.\d+)?s)$")


@pytest.mark.parametrize(("text", "nanoseconds"), GO_VALID.items())
def test_go_accepts(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", GO_INVALID)
def test_go_refuses(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


@pytest.mark.parametrize(("nanoseconds", "text"), GO_STRINGS.items())
def test_go_prints(nanoseconds: int, text: str) -> None:
    assert format_duration(nanoseconds) == text


@given(st.integers(INT64_MIN, INT64_MAX))
def test_printed_durations_read_back_exactly(nanoseconds: int) -> None:
    text = format_duration(nanoseconds)
    assert GO_STRING_FORM.match(text), text
    assert parse_duration(text) == nanoseconds


components = st.tuples(
    st.integers(0, 10**6), st.one_of(st.none(), st.text("0123456789", max_size=12)), st.sampled_from(sorted(UNITS))
)


@given(st.lists(components, min_size=1, max_size=5), st.sampled_from(["", "+", "-"]))
def test_any_well_formed_duration_is_its_exact_sum(parts: list[tuple[int, str | None, str]], sign: str) -> None:
    text = sign + "".join(f"{whole}{'' if digits is None else '.' + digits}{unit}" for whole, digits, unit in parts)
    exact = sum(
        Fraction(whole) * UNITS[unit] + (Fraction(int(digits), 10 ** len(digits)) * UNITS[unit] if digits else 0)
        for whole, digits, unit in parts
    )
    got = parse_duration(text)
    # Go truncates each fraction through a float64 product: at most 1ns off per component, never more
    assert abs(abs(got) - int(exact)) <= len(parts)
    assert (got <= 0) if sign == "-" else (got >= 0)


@given(st.text(max_size=12))
def test_anything_else_is_a_duration_error_not_a_crash(text: str) -> None:
    try:
        parse_duration(text)
    except DurationError as err:
        assert repr(text) in str(err)


@pytest.mark.parametrize(
    ("flag", "nanoseconds"), [("0", 0), ("30", 30 * SECOND), ("1m30s", 90 * SECOND), ("500ms", 500 * MILLISECOND)]
)
def test_request_timeout_takes_whole_seconds_or_a_duration(flag: str, nanoseconds: int) -> None:
    assert parse_request_timeout(flag) == nanoseconds


@pytest.mark.parametrize("flag", ["1.5", "1d", "-5s", "٣", "", "5 s"])
def test_request_timeout_refuses_what_cannot_be_a_timeout(flag: str) -> None:
    with pytest.raises(DurationError):
        parse_request_timeout(flag)
