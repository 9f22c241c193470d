"""Run a ClickHouse panel's SQL the way Grafana would (variables, then macros) on a Store, and say what kind of
column each result column is. The tests and the preview share this."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from activity.devtools.dashboards.macros import TimeRange, render
from activity.devtools.dashboards.model import ColumnKind, QueryVariable
from auditlog.storage import Store

Chosen = Mapping[str, Sequence[str] | None]


@dataclass(frozen=True)
class SqlResult:
    names: tuple[str, ...]
    types: tuple[str, ...]  # ClickHouse type names, as the server reports them
    rows: list[tuple[Any, ...]]

    @property
    def kinds(self) -> tuple[ColumnKind, ...]:
        return tuple(kind_of(t) for t in self.types)


def kind_of(ch_type: str) -> ColumnKind:
    """How Grafana's data frame sees a ClickHouse column: a time, a number or text."""
    bare = ch_type.removeprefix("Nullable(").removeprefix("LowCardinality(").rstrip(")")
    if bare.startswith(("DateTime", "Date")):
        return ColumnKind.TIME
    if bare.startswith(("Int", "UInt", "Float", "Decimal")):
        return ColumnKind.NUMBER
    return ColumnKind.TEXT


async def run(store: Store, sql: str, time: TimeRange, chosen: Chosen) -> SqlResult:
    rendered = render(sql, time, chosen)
    result = await store.run(lambda c: c.query(rendered))
    return SqlResult(
        tuple(result.column_names),
        tuple(t.name for t in result.column_types),
        [tuple(row) for row in result.result_rows],
    )


async def options(store: Store, variable: QueryVariable, time: TimeRange, chosen: Chosen) -> list[str]:
    """The values Grafana would list for `variable` over `time`."""
    found = await run(store, variable.options_sql, time, chosen)
    return [str(row[0]) for row in found.rows]
