"""What Grafana and the ClickHouse datasource plugin turn a panel's SQL into before ClickHouse sees it.

Grafana first interpolates template variables (`${name:singlequote}`; a custom all value is sent as is), then the
plugin's backend expands its macros (pkg/macros/macros.go of grafana/clickhouse-datasource v4). The tests and
the preview run the dashboards' SQL through this, so what they run is what Grafana would send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from activity.devtools.dashboards.model import ALL_VALUE

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?::(?P<format>\w+))?\}|\$(?P<bare>[A-Za-z]\w*)")
_MACRO = re.compile(r"\$__(?P<name>\w+)(?:\((?P<args>[^()]*)\))?")


@dataclass(frozen=True)
class TimeRange:
    start: datetime  # timezone-aware
    end: datetime
    interval: timedelta  # Grafana's $__interval for the panel: the range over its data points


def singlequote(values: Sequence[str]) -> str:
    """Grafana's `singlequote` format: each value quoted, quotes inside escaped with a backslash."""
    return ",".join("'" + v.replace("'", "\\'") + "'" for v in values)


def interpolate(sql: str, chosen: Mapping[str, Sequence[str] | None]) -> str:
    """Template variables replaced: `None` is the variable's `All` (the custom all value), else the chosen values."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"] or match["bare"]
        if name is None or name.startswith("__"):
            return match[0]  # a macro: the plugin's job
        if name not in chosen:
            raise ValueError(f"variable ${name} is not defined")
        values = chosen[name]
        if values is None:
            return ALL_VALUE
        if match["format"] != "singlequote":
            raise ValueError(f"${{{name}}} must use the :singlequote format in SQL (got {match[0]})")
        return singlequote(values)

    return _VARIABLE.sub(replace, sql)


def _seconds(t: datetime) -> int:
    return int(t.timestamp())


def _millis(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def expand_macros(sql: str, time: TimeRange) -> str:
    """The plugin's macros for `time`; an unknown macro is an error, as the plugin makes it one."""
    frm, to = time.start, time.end
    step_s = max(int(time.interval.total_seconds()), 1)
    step_ms = max(int(time.interval.total_seconds() * 1000), 1)
    plain = {
        "fromTime": f"toDateTime({_seconds(frm)})",
        "toTime": f"toDateTime({_seconds(to)})",
        "fromTime_ms": f"fromUnixTimestamp64Milli({_millis(frm)})",
        "toTime_ms": f"fromUnixTimestamp64Milli({_millis(to)})",
        "interval_s": str(step_s),
    }
    with_column = {
        "timeFilter": lambda c: f"{c} >= {plain['fromTime']} AND {c} <= {plain['toTime']}",
        "timeFilter_ms": lambda c: f"{c} >= {plain['fromTime_ms']} AND {c} <= {plain['toTime_ms']}",
        "dateFilter": lambda c: f"{c} >= toDate('{frm:%Y-%m-%d}') AND {c} <= toDate('{to:%Y-%m-%d}')",
        "timeInterval": lambda c: f"toStartOfInterval(toDateTime({c}), INTERVAL {step_s} second)",
        "timeInterval_ms": lambda c: f"toStartOfInterval(toDateTime64({c}, 3), INTERVAL {step_ms} millisecond)",
    }

    def replace(match: re.Match[str]) -> str:
        name, args = match["name"], match["args"]
        if name in plain and args is None:
            return plain[name]
        if name in with_column and args is not None:
            return with_column[name](args.strip())
        raise ValueError(f"unknown ClickHouse plugin macro or wrong arguments: {match[0]}")

    return _MACRO.sub(replace, sql)


def render(sql: str, time: TimeRange, chosen: Mapping[str, Sequence[str] | None]) -> str:
    """A panel's SQL as ClickHouse receives it from Grafana."""
    return expand_macros(interpolate(sql, chosen), time)
