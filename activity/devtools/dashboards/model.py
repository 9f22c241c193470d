"""Typed Grafana dashboard building blocks and their JSON (dashboard schemaVersion 39, Grafana 10/11).

Plain frozen dataclasses rather than a generator library: the three dashboards need a handful of panel kinds,
and the tests read these objects directly (expected SQL result columns, PromQL expressions) without parsing
JSON back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39
GRID_WIDTH = 24  # Grafana's grid is 24 columns wide

PROMETHEUS = "prometheus"
CLICKHOUSE = "grafana-clickhouse-datasource"
ALL_VALUE = "'__all__'"  # a ClickHouse variable's `All`: an SQL string literal no real value equals


@dataclass(frozen=True)
class DatasourceVariable:
    """A datasource picker; panels refer to the datasource as `${name}`, so one JSON fits every Grafana."""

    name: str
    plugin: str  # the datasource plugin id the picker lists
    label: str
    description: str

    @property
    def ref(self) -> dict[str, str]:
        return {"type": self.plugin, "uid": "${" + self.name + "}"}

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "datasource",
            "label": self.label,
            "description": self.description,
            "query": self.plugin,
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        }


class ColumnKind(enum.Enum):
    """What a ClickHouse result column must hold for the panel to draw it."""

    TIME = "time"
    TEXT = "text"
    NUMBER = "number"


@dataclass(frozen=True)
class Column:
    name: str
    kind: ColumnKind


class SqlFormat(enum.IntEnum):
    """The ClickHouse plugin's integer `format` (grafana-plugin-sdk-go sqlutil.FormatQueryOption)."""

    TIME_SERIES = 0
    TABLE = 1


@dataclass(frozen=True)
class QueryVariable:
    """A multi-value ClickHouse variable over one SQL expression of the events table. The same expression lists
    the options and filters the panels, so a chosen value always matches the rows it was listed from."""

    name: str
    label: str
    expression: str  # SQL over `events`; empty values are given a readable name here
    datasource: DatasourceVariable

    @property
    def options_sql(self) -> str:
        return (
            f"SELECT DISTINCT {self.expression} AS value FROM events WHERE $__timeFilter(timestamp) "
            "ORDER BY value LIMIT 1000"
        )

    @property
    def filter_sql(self) -> str:
        # Grafana sends a custom all value unformatted, so `All` arrives as the bare literal ALL_VALUE: true
        # for every row, even rows whose value is past the options list's LIMIT.
        values = f"${{{self.name}:singlequote}}"
        return f"({ALL_VALUE} IN ({values}) OR {self.expression} IN ({values}))"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "query",
            "label": self.label,
            "datasource": self.datasource.ref,
            "query": self.options_sql,
            "definition": self.options_sql,
            "multi": True,
            "includeAll": True,
            "allValue": ALL_VALUE,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,  # on time range change: the options are the values seen in the window
            "sort": 1,
            "hide": 0,
            "regex": "",
            "options": [],
        }


@dataclass(frozen=True)
class LabelVariable:
    """A Prometheus variable listing one label's values on one metric (`label_values(metric, label)`)."""

    name: str
    label: str
    metric: str
    label_name: str
    datasource: DatasourceVariable

    @property
    def query(self) -> str:
        return f"label_values({self.metric}, {self.label_name})"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": "query",
            "label": self.label,
            "datasource": self.datasource.ref,
            "query": {"query": self.query, "refId": f"{self.name}-values"},
            "definition": self.query,
            "multi": True,
            "includeAll": True,
            "allValue": ".*",  # panels match with =~, so All needs no list of every value
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "refresh": 2,
            "sort": 1,
            "hide": 0,
            "regex": "",
            "options": [],
        }


Variable = QueryVariable | LabelVariable


@dataclass(frozen=True)
class PromTarget:
    expr: str
    legend: str = ""

    def to_json(self, ref_id: str, datasource: DatasourceVariable) -> dict[str, Any]:
        return {
            "refId": ref_id,
            "datasource": datasource.ref,
            "expr": self.expr,
            "legendFormat": self.legend or "__auto",
            "range": True,
            "editorMode": "code",
        }


@dataclass(frozen=True)
class SqlTarget:
    sql: str  # with the plugin's macros and ${variable} references, as Grafana sends it
    format: SqlFormat
    columns: tuple[Column, ...]  # what the query returns, in order: checked against the real schema by the tests

    def to_json(self, ref_id: str, datasource: DatasourceVariable) -> dict[str, Any]:
        return {
            "refId": ref_id,
            "datasource": datasource.ref,
            "editorType": "sql",
            "queryType": "timeSeries" if self.format is SqlFormat.TIME_SERIES else "table",
            "format": int(self.format),
            "rawSql": self.sql,
        }


Target = PromTarget | SqlTarget


class PanelType(enum.Enum):
    TIMESERIES = "timeseries"
    STAT = "stat"
    TABLE = "table"
    BARGAUGE = "bargauge"


@dataclass(frozen=True)
class Panel:
    title: str
    description: str  # what to look at and what a bad value means
    kind: PanelType
    datasource: DatasourceVariable
    targets: tuple[Target, ...]
    unit: str = "short"
    width: int = 12
    height: int = 8
    stacked: bool = False
    thresholds: tuple[tuple[float, str], ...] = ()  # (from value, colour) above the green base

    def to_json(self, panel_id: int, x: int, y: int) -> dict[str, Any]:
        steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
        steps += [{"color": colour, "value": value} for value, colour in self.thresholds]
        defaults: dict[str, Any] = {"unit": self.unit, "thresholds": {"mode": "absolute", "steps": steps}}
        if self.kind is PanelType.TIMESERIES:
            defaults["custom"] = {
                "drawStyle": "line",
                "fillOpacity": 20 if self.stacked else 5,
                "stacking": {"mode": "normal" if self.stacked else "none", "group": "A"},
                "showPoints": "never",
            }
        return {
            "id": panel_id,
            "type": self.kind.value,
            "title": self.title,
            "description": self.description,
            "datasource": self.datasource.ref,
            "gridPos": {"h": self.height, "w": self.width, "x": x, "y": y},
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": _options(self.kind),
            "targets": [t.to_json(chr(ord("A") + i), self.datasource) for i, t in enumerate(self.targets)],
        }


def _options(kind: PanelType) -> dict[str, Any]:
    if kind is PanelType.TIMESERIES:
        return {
            "legend": {"displayMode": "table", "placement": "right", "showLegend": True, "calcs": ["mean", "max"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    if kind is PanelType.STAT:
        return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value"}
    if kind is PanelType.BARGAUGE:
        return {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": True},
            "orientation": "horizontal",
            "displayMode": "basic",
        }
    return {"showHeader": True, "cellHeight": "sm"}


@dataclass(frozen=True)
class Row:
    """A section heading; the panels after it, up to the next Row, sit under it."""

    title: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    datasources: tuple[DatasourceVariable, ...]
    items: tuple[Panel | Row, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-6h"
    refresh: str = "1m"

    @property
    def panels(self) -> tuple[Panel, ...]:
        return tuple(item for item in self.items if isinstance(item, Panel))

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": "utc",
            "editable": True,
            "graphTooltip": 1,  # shared crosshair: line up a spike across panels
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "time": {"from": self.time_from, "to": "now"},
            "refresh": self.refresh,
            "annotations": {"list": []},
            "links": [],
            "templating": {
                "list": [d.to_json() for d in self.datasources] + [v.to_json() for v in self.variables],
            },
            "panels": _laid_out(self.items),
        }


@dataclass
class _Cursor:
    x: int = 0
    y: int = 0
    row_height: int = 0
    ids: list[int] = field(default_factory=list)

    def next_id(self) -> int:
        self.ids.append(len(self.ids) + 1)
        return self.ids[-1]

    def newline(self) -> None:
        self.y += self.row_height
        self.x, self.row_height = 0, 0


def _laid_out(items: tuple[Panel | Row, ...]) -> list[dict[str, Any]]:
    """Panels left to right, wrapping at the grid's width; a Row starts a new line."""
    out: list[dict[str, Any]] = []
    at = _Cursor()
    for item in items:
        if isinstance(item, Row):
            at.newline()
            row_id = at.next_id()
            out.append(
                {
                    "id": row_id,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": at.y},
                    "panels": [],
                }
            )
            at.y += 1
            continue
        if at.x + item.width > GRID_WIDTH:
            at.newline()
        out.append(item.to_json(at.next_id(), at.x, at.y))
        at.x += item.width
        at.row_height = max(at.row_height, item.height)
    return out
