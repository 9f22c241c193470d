"""Shared pieces of the dashboard tests: the panels' queries, loadgen data in a store, and the JSON lint."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import promql_parser
from prometheus_client.metrics_core import Metric

from activity.devtools.dashboards.build import DASHBOARDS
from activity.devtools.dashboards.macros import TimeRange
from activity.devtools.dashboards.metricnames import parse
from activity.devtools.dashboards.model import GRID_WIDTH, LabelVariable, Panel, PromTarget, QueryVariable, SqlTarget
from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.storage import Store

REPO = Path(__file__).resolve().parents[1]
GRAFANA_DASHBOARD_CRD = REPO.parent / "shared" / "crds" / "grafana.integreatly.org_grafanadashboards.yaml"

LOADGEN_START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
LOADGEN_REQUESTS = 2000
STEP = timedelta(seconds=1)
# The loadgen requests span 2000 s from LOADGEN_START: the range holds all of them, one-minute buckets.
TIME = TimeRange(LOADGEN_START - timedelta(minutes=5), LOADGEN_START + timedelta(hours=1), timedelta(minutes=1))


def prom_targets() -> Iterator[tuple[str, PromTarget]]:
    """(where, target) for every Prometheus target of every dashboard."""
    for stem, dashboard in DASHBOARDS.items():
        for panel in dashboard.panels:
            for target in panel.targets:
                if isinstance(target, PromTarget):
                    yield f"{stem}: {panel.title}", target


def prom_expressions() -> Iterator[tuple[str, str]]:
    return ((where, target.expr) for where, target in prom_targets())


def label_variables() -> Iterator[tuple[str, LabelVariable]]:
    for stem, dashboard in DASHBOARDS.items():
        for variable in dashboard.variables:
            if isinstance(variable, LabelVariable):
                yield f"{stem}: ${variable.name}", variable


def sql_panels() -> Iterator[tuple[str, Panel, SqlTarget]]:
    for stem, dashboard in DASHBOARDS.items():
        for panel in dashboard.panels:
            for target in panel.targets:
                if isinstance(target, SqlTarget):
                    yield f"{stem}: {panel.title}", panel, target


def query_variables() -> list[QueryVariable]:
    found = {v.name: v for d in DASHBOARDS.values() for v in d.variables if isinstance(v, QueryVariable)}
    return list(found.values())


ALL_SELECTED: dict[str, None] = {v.name: None for v in query_variables()}


def loadgen_events() -> list[dict[str, Any]]:
    """The ResponseComplete events of LOADGEN_REQUESTS requests: what the consumer stores by default."""
    generator = EventGenerator(GeneratorSettings(seed=11, start=LOADGEN_START, step=STEP))
    return [e for e in generator.events(LOADGEN_REQUESTS) if e["stage"] == "ResponseComplete"]


async def load(store: Store) -> list[dict[str, Any]]:
    events = loadgen_events()
    await store.insert_events([orjson.dumps(e) for e in events])
    return events


# ---- lint of the generated dashboard JSON ----

_REFERENCE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"] and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )


def _references(value: Any) -> set[str]:
    """Template variables a JSON value refers to (Grafana's own $__ names excluded)."""
    text = orjson.dumps(value).decode()
    return {a or b for a, b in _REFERENCE.findall(text)}


def problems(dashboard: dict[str, Any]) -> list[str]:
    """What would make Grafana misdraw or refuse the dashboard; empty when it is sound."""
    found: list[str] = []
    if not isinstance(dashboard.get("schemaVersion"), int) or dashboard["schemaVersion"] < 36:
        found.append("schemaVersion must be an integer ≥ 36")
    variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
    datasource_vars = {name: v["query"] for name, v in variables.items() if v["type"] == "datasource"}

    def check_datasource(where: str, ref: Any) -> None:
        uid = ref.get("uid", "") if isinstance(ref, dict) else ""
        match = re.fullmatch(r"\$\{(\w+)\}", uid)
        if not match or match[1] not in datasource_vars:
            found.append(f"{where}: datasource uid {uid!r} is not a datasource variable")
        elif datasource_vars[match[1]] != ref.get("type"):
            found.append(f"{where}: datasource type {ref.get('type')!r} differs from ${match[1]}'s plugin")

    for name, variable in variables.items():
        if variable["type"] == "query":
            check_datasource(f"variable ${name}", variable.get("datasource"))
    panels = dashboard.get("panels", [])
    ids = Counter(p.get("id") for p in panels)
    found += [f"panel id {i} is used {n} times" for i, n in ids.items() if n > 1 or not isinstance(i, int)]
    for i, panel in enumerate(panels):
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) and not isinstance(grid.get(k), bool) for k in "xywh"):
            found.append(f"{where}: gridPos needs integer x, y, w, h")
            continue
        if grid["w"] < 1 or grid["h"] < 1 or grid["x"] < 0 or grid["y"] < 0 or grid["x"] + grid["w"] > GRID_WIDTH:
            found.append(f"{where}: gridPos {grid} is off the {GRID_WIDTH}-column grid")
        found += [
            f"{where}: overlaps panel {other.get('id')}"
            for other in panels[:i]
            if isinstance(other.get("gridPos", {}).get("w"), int) and _overlap(grid, other["gridPos"])
        ]
        if panel.get("type") == "row":
            continue
        if len(panel.get("description", "")) < 60:
            found.append(f"{where}: needs a description saying what to look at and what a bad value means")
        check_datasource(where, panel.get("datasource"))
        targets = panel.get("targets") or []
        if not targets:
            found.append(f"{where}: has no query")
        if len({t.get("refId") for t in targets}) != len(targets):
            found.append(f"{where}: refIds are not unique")
        for target in targets:
            check_datasource(f"{where} {target.get('refId')}", target.get("datasource"))
            if "rawSql" in target and (type(target.get("format")) is not int or target["format"] not in (0, 1)):
                found.append(f"{where}: SQL target format must be the integer 0 (time series) or 1 (table)")
        unknown = {r for r in _references(targets) if not r.startswith("__") and r not in variables}
        found += [f"{where}: refers to undefined variable ${name}" for name in sorted(unknown)]
    return found


def kept_labels(node: object) -> set[str] | None:
    """The labels an expression's result series keep (None: all of the input's, not known statically)."""
    if isinstance(node, promql_parser.AggregateExpr):
        if node.modifier is None:
            return set()
        if node.modifier.type == promql_parser.AggModifierType.By:
            return set(node.modifier.labels)
        return None
    if isinstance(node, promql_parser.Call) and node.func.name == "histogram_quantile":
        inner = kept_labels(node.args[1])
        return None if inner is None else inner - {"le"}
    if isinstance(node, promql_parser.Call) and node.func.name == "vector":
        return set()
    if isinstance(node, promql_parser.BinaryExpr):
        sides = [kept_labels(node.lhs), kept_labels(node.rhs)]
        known = [s for s in sides if s is not None]
        return set.union(*known) if known else None
    if isinstance(node, promql_parser.ParenExpr):
        return kept_labels(node.expr)
    return None


def _walk(node: object) -> set[str]:
    if isinstance(node, promql_parser.VectorSelector):
        if node.name:
            return {node.name}
        names = {m.value for m in node.matchers.matchers if m.name == "__name__"}
        return names
    if isinstance(node, promql_parser.MatrixSelector):
        return _walk(node.vector_selector)
    if isinstance(node, promql_parser.BinaryExpr):
        return _walk(node.lhs) | _walk(node.rhs)
    if isinstance(node, promql_parser.Call):
        return set().union(*(_walk(arg) for arg in node.args)) if node.args else set()
    if isinstance(node, promql_parser.AggregateExpr | promql_parser.ParenExpr | promql_parser.UnaryExpr):
        return _walk(node.expr) | (_walk(node.param) if isinstance(node, promql_parser.AggregateExpr) else set())
    if isinstance(node, promql_parser.SubqueryExpr):
        return _walk(node.expr)
    return set()  # number and string literals


def metric_names(expr: str) -> set[str]:
    """Every metric name a panel's PromQL selects."""
    return _walk(parse(expr))


def sample_names(families: Iterable[Metric]) -> set[str]:
    """Names of the samples actually exposed (`x_total`, `x_bucket`, ...): what a PromQL selector matches."""
    return {sample.name for family in families for sample in family.samples}
