"""Every ClickHouse panel's SQL, as Grafana and the ClickHouse plugin would send it, runs on the embedded engine
against the real migrated schema with loadgen data, returns the columns the panel draws, and its variables
filter what they say."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from dashboards_support import ALL_SELECTED, TIME, load, query_variables, sql_panels
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.devtools.dashboards import sqlrun
from activity.devtools.dashboards.macros import TimeRange, render, singlequote
from activity.devtools.dashboards.model import ColumnKind, SqlFormat
from auditlog.config import StoreConfig
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION
from auditlog.storage import Store


async def test_every_clickhouse_panel_returns_its_columns_for_the_loaded_events(store: Store) -> None:
    await load(store)
    failures = []
    for where, _panel, target in sql_panels():
        result = await sqlrun.run(store, target.sql, TIME, ALL_SELECTED)
        shape = tuple(zip(result.names, result.kinds, strict=True))
        expected = tuple((c.name, c.kind) for c in target.columns)
        if shape != expected:
            failures.append(f"{where}: returned {shape} ({result.types}), expected {expected}")
        if not result.rows:
            failures.append(f"{where}: no rows for the loaded events")
        if target.format is SqlFormat.TIME_SERIES and result.kinds[:1] != (ColumnKind.TIME,):
            failures.append(f"{where}: a time series must start with its time column")
    assert failures == []


def _tenant(event: dict[str, Any]) -> str:
    annotations = event.get("annotations") or {}
    name = annotations.get(SCOPE_NAME_ANNOTATION, "")
    return f"{annotations.get(SCOPE_TYPE_ANNOTATION, '')}/{name}" if name else "(none)"


def _namespace(event: dict[str, Any]) -> str:
    return event.get("objectRef", {}).get("namespace") or "(cluster-scoped)"


def _user(event: dict[str, Any]) -> str:
    return event["user"].get("username") or "(unknown)"


async def test_variables_list_the_stored_values(store: Store) -> None:
    events = await load(store)
    of_event = {"tenant": _tenant, "namespace": _namespace, "user": _user}
    for variable in query_variables():
        listed = await sqlrun.options(store, variable, TIME, ALL_SELECTED)
        assert listed == sorted({of_event[variable.name](e) for e in events}), variable.name


async def _only(store: Store, sql: str, **chosen: list[str]) -> sqlrun.SqlResult:
    return await sqlrun.run(store, sql, TIME, {**ALL_SELECTED, **chosen})


def _sql(title: str) -> str:
    (target,) = [t for where, _, t in sql_panels() if where.endswith(f": {title}")]
    return target.sql


async def test_choosing_values_filters_every_panel_to_them(store: Store) -> None:
    events = await load(store)
    requests = Counter(_tenant(e) for e in events)
    tenants = sorted(requests)[:2]
    summary = await _only(store, _sql("Tenant summary"), tenant=tenants)
    assert {row[0]: row[1] for row in summary.rows} == {t: requests[t] for t in tenants}

    user = _user(events[0])
    top = await _only(store, _sql("Top users"), user=[user])
    assert top.rows == [(user, sum(1 for e in events if _user(e) == user))]

    deletions = [e for e in events if e["verb"] == "delete" and _namespace(e) == "(cluster-scoped)"]
    table = await _only(store, _sql("Deletions"), namespace=["(cluster-scoped)"])
    assert sorted(row[4] for row in table.rows) == sorted(e["objectRef"].get("name", "") for e in deletions)
    assert deletions, "the loadgen data should delete cluster-scoped objects"

    # a value nobody has: every panel is empty (or zero), none errors
    for where, _panel, target in sql_panels():
        if "${user:" in target.sql:
            result = await _only(store, target.sql, user=["nobody@example.com"])
            assert all(value == 0 for row in result.rows for value in row), where


async def test_failures_panel_counts_only_codes_from_400(store: Store) -> None:
    events = await load(store)
    result = await sqlrun.run(store, _sql("Failed requests by code"), TIME, ALL_SELECTED)
    by_code: Counter[str] = Counter()
    for _time, code, count in result.rows:
        by_code[code] += count
    expected = Counter(str(e["responseStatus"]["code"]) for e in events if e["responseStatus"]["code"] >= 400)
    assert by_code == expected


def test_unknown_macros_and_unformatted_variables_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown ClickHouse plugin macro"):
        render("SELECT 1 WHERE $__timeFilterr(timestamp)", TIME, {})
    with pytest.raises(ValueError, match="must use the :singlequote format"):
        render("SELECT 1 WHERE user IN (${user})", TIME, {"user": ["alice"]})
    with pytest.raises(ValueError, match="is not defined"):
        render("SELECT 1 WHERE user IN (${who:singlequote})", TIME, {})


def test_macros_expand_as_the_plugin_does() -> None:
    sql = "$__timeFilter(timestamp) $__timeInterval(timestamp) $__interval_s $__fromTime $__toTime_ms"
    start, end = int(TIME.start.timestamp()), int(TIME.end.timestamp())
    assert render(sql, TIME, {}) == (
        f"timestamp >= toDateTime({start}) AND timestamp <= toDateTime({end}) "
        "toStartOfInterval(toDateTime(timestamp), INTERVAL 60 second) 60 "
        f"toDateTime({start}) fromUnixTimestamp64Milli({end * 1000})"
    )


# Grafana's singlequote format escapes quotes but not backslashes, so values holding one cannot round-trip;
# Kubernetes names, namespaces and tenant names never hold one.
_VALUES = st.lists(st.text(st.characters(exclude_characters="\\", exclude_categories=["Cs"]), max_size=20), min_size=1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=_VALUES)
def test_chosen_values_reach_clickhouse_unchanged(store_config: StoreConfig, values: list[str]) -> None:
    async def echo() -> list[str]:
        s = Store(store_config, workers=1)
        try:
            rows = await s.run(lambda c: c.query(f"SELECT arrayJoin([{singlequote(values)}])").result_rows)
            return [row[0] for row in rows]
        finally:
            s.close()

    assert asyncio.run(echo()) == values


def test_time_range_bounds_are_whole_seconds() -> None:
    # the plugin truncates to seconds: a range ending mid-second still includes that second's events
    time = TimeRange(TIME.start.replace(microsecond=900_000), TIME.end.replace(microsecond=900_000), TIME.interval)
    assert render("$__timeFilter(t)", time, {}) == render("$__timeFilter(t)", TIME, {})
