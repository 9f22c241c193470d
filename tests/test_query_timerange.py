"""spec.startTime / spec.endTime: the accepted forms, the errors, the window rules and the split hint."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.timerange import (
    format_duration,
    format_time,
    parse_time,
    resolve_window,
    to_us,
)

NOW = datetime(2026, 11, 28, 12, 0, 0, 250000, tzinfo=UTC)
MAX = timedelta(days=30)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-28T10:00:00Z", "2026-11-28T10:00:00.000000Z"),
        ("2026-11-28t10:00:00z", "2026-11-28T10:00:00.000000Z"),
        ("2026-11-28T10:00:00.5+02:00", "2026-11-28T08:00:00.500000Z"),
        ("2026-11-28T10:00:00-05:30", "2026-11-28T15:30:00.000000Z"),
        ("2026-11-28T23:30:00-01:00", "2026-11-29T00:30:00.000000Z"),
        ("2026-11-28T10:00:00.123456789Z", "2026-11-28T10:00:00.123456Z"),  # nanoseconds truncated
        ("now", "2026-11-28T12:00:00.250000Z"),
        ("now-90s", "2026-11-28T11:58:30.250000Z"),
        ("now-30m", "2026-11-28T11:30:00.250000Z"),
        ("now-1h", "2026-11-28T11:00:00.250000Z"),
        ("now-7d", "2026-11-21T12:00:00.250000Z"),
        ("now-2w", "2026-11-14T12:00:00.250000Z"),
        ("now-0s", "2026-11-28T12:00:00.250000Z"),
        ("now-0", "2026-11-28T12:00:00.250000Z"),
        ("now-1h30m", "2026-11-28T10:30:00.250000Z"),  # Go durations, as kubectl users write them
        ("now-1.5h", "2026-11-28T10:30:00.250000Z"),
        ("now-1h0m0s", "2026-11-28T11:00:00.250000Z"),
        ("now-250ms", "2026-11-28T12:00:00.000000Z"),
        ("now-1d12h", "2026-11-27T00:00:00.250000Z"),
    ],
)
def test_accepted_times(text: str, utc: str) -> None:
    assert format_time(to_us(parse_time(text, NOW))) == utc


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a time"),
        ("yesterday", "not a time"),
        ("2026-11-28", "not a time"),
        ("2026-11-28T10:00:00", "not a time"),  # no offset: ambiguous
        ("2026-11-28 10:00:00Z", "not a time"),
        ("now+1h", "not a time"),
        ("now-1y", "not a time"),
        ("now-5", "not a time"),
        ("now-", "not a time"),
        ("now--1h", "not a time"),
        ("now-+1h", "not a time"),
        ("now-1 h", "not a time"),
        ("NOW", "not a time"),
        (" now", "not a time"),
        ("2026-02-30T00:00:00Z", "not a valid date or time (day is out of range for month)"),
        ("2026-11-28T24:00:00Z", "not a valid date or time"),
        ("2026-11-28T10:00:00+25:00", "not a valid date or time (UTC offset +25:00 is out of range)"),
        ("2026-11-28T10:00:00-02:60", "not a valid date or time (UTC offset -02:60 is out of range)"),
        ("now-999999999999w", "is out of range"),
    ],
)
def test_rejected_times_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        parse_time(text, NOW)
    if message == "not a time":
        assert "RFC3339" in str(err.value) or "1h30m" in str(err.value)


@given(st.integers(to_us(datetime(1, 1, 1, tzinfo=UTC)), to_us(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))))
def test_effective_times_read_back_as_the_same_instant(us: int) -> None:
    # years before 1000 included: strftime's %Y once wrote year 1 as "1", which is not RFC3339
    assert to_us(parse_time(format_time(us), NOW)) == us


def test_window_resolves_against_one_clock_reading() -> None:
    window = resolve_window("now-1h", "now", NOW, MAX)
    assert (window.start, window.end) == ("2026-11-28T11:00:00.250000Z", "2026-11-28T12:00:00.250000Z")


def test_window_of_exactly_the_maximum_is_accepted() -> None:
    window = resolve_window("now-30d", "now", NOW, MAX)
    assert window.end_us - window.start_us == to_us(NOW) - to_us(NOW - MAX)


@pytest.mark.parametrize(("start", "end"), [("now", "now"), ("now", "now-1s"), ("2026-11-28T12:00:00Z", "now-1h")])
def test_end_must_be_after_start(start: str, end: str) -> None:
    with pytest.raises(InvalidQuery) as err:
        resolve_window(start, end, NOW, MAX)
    (error,) = err.value.errors
    assert error.field == "spec.endTime" and error.value == end and "must be after startTime" in error.detail


def test_both_bad_times_are_reported_at_once() -> None:
    with pytest.raises(InvalidQuery) as err:
        resolve_window("soon", "later", NOW, MAX)
    assert [(e.field, e.value) for e in err.value.errors] == [("spec.startTime", "soon"), ("spec.endTime", "later")]


def test_window_over_the_maximum_lists_the_windows_to_query() -> None:
    with pytest.raises(InvalidQuery) as err:
        resolve_window("2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z", NOW, timedelta(days=1))
    (error,) = err.value.errors
    assert error.field == "spec.startTime"
    assert error.detail == (
        "the window [2026-01-01T00:00:00.000000Z, 2026-01-02T12:00:00.000000Z) is 1d12h; the maximum is 1d: "
        "query [2026-01-01T00:00:00.000000Z, 2026-01-02T00:00:00.000000Z) and "
        "[2026-01-02T00:00:00.000000Z, 2026-01-02T12:00:00.000000Z) separately"
    )


def test_a_very_long_window_lists_the_first_windows_and_counts_the_rest() -> None:
    with pytest.raises(InvalidQuery) as err:
        resolve_window("now-365d", "now", NOW, MAX)
    detail = err.value.errors[0].detail
    assert detail.startswith("the window [2025-11-28T12:00:00.250000Z, 2026-11-28T12:00:00.250000Z) is 365d;")
    assert detail.endswith(
        "[2025-12-28T12:00:00.250000Z, 2026-01-27T12:00:00.250000Z), [2026-01-27T12:00:00.250000Z, "
        "2026-02-26T12:00:00.250000Z) and 10 more windows of at most 30d"
    )


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(days=30), "30d"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=14), "14d"),
        (timedelta(hours=36), "1d12h"),
        (timedelta(days=30, seconds=53, microseconds=94117), "30d53.094117s"),  # once 30d53s0.094117s
    ],
)
def test_window_lengths_are_shown_as_durations(delta: timedelta, shown: str) -> None:
    assert format_duration(delta) == shown


def test_a_window_with_a_fraction_of_a_second_is_shown_in_one_piece() -> None:
    with pytest.raises(InvalidQuery) as err:
        resolve_window("2026-10-29T12:00:00.25Z", "now", NOW + timedelta(seconds=53.094117), MAX)
    assert " is 30d53.094117s; the maximum is 30d" in err.value.errors[0].detail


@pytest.mark.parametrize(
    ("maximum", "shown", "more"),
    [(timedelta(seconds=1), "1s", "315,537,897,596"), (MAX, "30d", "121,733")],
)
def test_an_absurd_window_is_refused_without_building_its_split(
    monkeypatch: pytest.MonkeyPatch, maximum: timedelta, shown: str, more: str
) -> None:
    """0001 → 9999 is 121,734 windows of 30 days (it cost 1.85 s of CPU before its 422): only the three listed may
    be formatted."""
    from apiserver.registry.auditlogquery import timerange

    formatted: list[int] = []
    real = timerange.format_time
    monkeypatch.setattr(timerange, "format_time", lambda us: formatted.append(us) or real(us))
    with pytest.raises(InvalidQuery) as err:
        resolve_window("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", NOW, maximum)
    detail = err.value.errors[0].detail
    assert f"the maximum is {shown}" in detail and f"and {more} more windows of at most {shown}" in detail
    assert len(formatted) <= 10
    assert "[0001-01-01T00:00:00.000000Z, " in detail
