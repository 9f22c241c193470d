"""The one duration parser and formatter: Go's time.ParseDuration and Duration.String(), checked against Go itself.

The oracle is the real kubectl (a Go program): `--request-timeout=X` is read with time.ParseDuration and sent as
`?timeout=<Duration.String()>`, which kubectl logs at -v=6 before it fails to connect.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import timedelta
from urllib.parse import unquote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from auditlog.durations import (
    DAY,
    HOUR,
    MAX_NS,
    MIN_NS,
    MINUTE,
    SECOND,
    DurationError,
    format_ns,
    format_timedelta,
    parse_exact,
    parse_ns,
    parse_seconds,
    parse_timedelta,
)

GO_UNITS = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
# Go's grammar, written independently of the parser: [-+]?([0-9]*(\.[0-9]*)?unit)+ with a digit somewhere in each
# number, or a bare 0.
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
GO_GRAMMAR = re.compile(rf"[-+]?(?:0|(?:{_NUMBER}(?:{'|'.join(GO_UNITS)}))+)")
DAY_GRAMMAR = re.compile(rf"[-+]?(?:0|(?:{_NUMBER}(?:{'|'.join([*GO_UNITS, 'd', 'w'])}))+)")


def go_duration(text: str) -> str | None:
    """Go's Duration.String() of time.ParseDuration(text), or None when Go refuses it (from the real kubectl)."""
    result = subprocess.run(
        [
            "kubectl",
            "--server=https://127.0.0.1:1",
            "--token=unused",
            "--insecure-skip-tls-verify",
            f"--request-timeout={text}",
            "-v=6",
            "get",
            "--raw",
            "/x",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    if "Invalid timeout value" in result.stderr:
        return None
    found = re.search(r"GET https://127\.0\.0\.1:1/x(?:\?timeout=(\S+))?", result.stderr)
    assert found is not None, result.stderr
    return unquote(found.group(1)) if found.group(1) else "0s"  # client-go omits a zero timeout


needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (the Go oracle) is not on PATH")

components = st.tuples(
    st.text("0123456789", max_size=4),
    st.none() | st.text("0123456789", max_size=4),
    st.sampled_from([*GO_UNITS, "", "d", "x", "S"]),
)
go_like = st.builds(
    lambda sign, parts: sign + "".join(w + ("" if f is None else "." + f) + u for w, f, u in parts),
    st.sampled_from(["", "", "-", "+"]),
    st.lists(components, min_size=0, max_size=4),
)


@needs_kubectl
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(go_like)
@example("1m30s")
@example("1h0m0s")
@example("500ms")
@example("1.5s")
@example("-1.5h")
@example("1h2m3.5s")
@example(".5s")
@example("1.s")
@example("1us")
@example("1µs")
@example("2562047h47m16.854775807s")
@example("2562047h47m16.854775808s")
@example("-2562047h47m16.854775808s")
@example("0.1234567890123456789012h")
@example("1.0000000001s")
@example("1x")
@example("1")
def test_parse_and_format_agree_with_go(text: str) -> None:
    assume(text != "")  # kubectl reads an empty flag as unset
    if re.fullmatch(r"[+-]?[0-9]+", text) and text.lstrip("+-") != "0":
        text += "s"  # kubectl alone reads a bare integer as seconds; Go's ParseDuration (and we) refuse it
    expected = go_duration(text)
    if expected is None:
        with pytest.raises(DurationError):
            parse_ns(text)
    else:
        assert format_ns(parse_ns(text)) == expected


@given(st.integers(MIN_NS, MAX_NS))
def test_every_duration_reads_back_from_its_go_form(ns: int) -> None:
    assert parse_ns(format_ns(ns)) == ns


@given(
    st.integers(0, 2_562_046),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999_999_999),
    st.booleans(),
)
def test_components_written_the_go_way_sum_up(hours: int, minutes: int, seconds: int, nanos: int, neg: bool) -> None:
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    text = ("-" if neg else "") + f"{hours}h{minutes}m{seconds}{fraction}s"
    total = hours * HOUR + minutes * MINUTE + seconds * SECOND + nanos
    assert parse_ns(text) == (-total if neg else total)
    assert format_ns(parse_ns(text)) == format_ns(-total if neg else total)


@settings(max_examples=500)
@given(st.text("0123456789.+-hmsunµd x", max_size=12))
def test_exactly_the_go_grammar_is_accepted(text: str) -> None:
    for days, grammar in ((False, GO_GRAMMAR), (True, DAY_GRAMMAR)):
        if grammar.fullmatch(text):
            assert isinstance(parse_exact(text, days=days), object)
        else:
            with pytest.raises(DurationError, match="is not a duration"):
                parse_exact(text, days=days)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1m30s", 90 * SECOND),
        ("1h0m0s", HOUR),
        ("500ms", SECOND // 2),
        ("1.5s", 3 * SECOND // 2),
        ("-1.5h", -90 * MINUTE),
        ("1h2m3.5s", HOUR + 2 * MINUTE + 3 * SECOND + SECOND // 2),
        ("0", 0),
        ("+0", 0),
        ("1µs", 1000),
        ("3ns", 3),
    ],
)
def test_go_examples(text: str, ns: int) -> None:
    assert parse_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not a duration"),
        ("30", "a unit is missing"),
        ("1.5", "a unit is missing"),
        ("1 s", "unknown unit ' s'"),
        ("1d", "unknown unit 'd'"),
        ("9223372036854775808ns", "is out of range"),
        ("2562048h", "is out of range"),
    ],
)
def test_refusals_say_what_to_write(text: str, message: str) -> None:
    with pytest.raises(DurationError, match=re.escape(message)) as refused:
        parse_ns(text)
    assert "1h30m" in str(refused.value) or "out of range" in str(refused.value)


def test_days_and_weeks_only_where_asked() -> None:
    assert parse_timedelta("7d", days=True) == timedelta(days=7)
    assert parse_timedelta("2w1d12h30m", days=True) == timedelta(days=15, hours=12, minutes=30)
    assert parse_ns("1.5d", days=True) == 36 * HOUR
    with pytest.raises(DurationError, match="in days: 7d"):
        parse_ns("7y", days=True)


def test_seconds_and_timedeltas() -> None:
    assert parse_seconds("1m30s") == 90.0
    assert parse_timedelta("1.0000015s") == timedelta(seconds=1, microseconds=1)  # truncated to microseconds
    assert parse_timedelta("-1.0000015s") == -timedelta(seconds=1, microseconds=1)


@pytest.mark.parametrize(
    ("delta", "shown"),
    [
        (timedelta(days=30), "30d"),
        (timedelta(hours=36), "1d12h"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(seconds=53, microseconds=94117), "53.094117s"),  # once shown as 53s0.094117s
        (timedelta(hours=1, seconds=5), "1h5s"),
        (timedelta(days=1, milliseconds=500), "1d500ms"),
        (timedelta(0), "0s"),
    ],
)
def test_the_readable_form_in_days(delta: timedelta, shown: str) -> None:
    assert format_timedelta(delta, days=True) == shown


@given(st.timedeltas(min_value=-timedelta(days=100_000), max_value=timedelta(days=100_000)))
def test_the_readable_form_reads_back(delta: timedelta) -> None:
    assert parse_timedelta(format_timedelta(delta, days=True), days=True) == delta
    assert format_timedelta(delta) == format_ns(delta // timedelta(microseconds=1) * 1000)


def test_day_length() -> None:
    assert parse_ns("1d", days=True) == DAY
