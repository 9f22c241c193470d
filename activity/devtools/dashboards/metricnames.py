"""The metric names a PromQL expression reads, from a real PromQL parser (promql-parser)."""

from __future__ import annotations

import re

import promql_parser

# Grafana's range variables are not PromQL; any valid duration parses the same way.
_GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")  # a label variable in a =~ matcher: `.*` is its `All`


def parse(expr: str) -> promql_parser.Expr:
    """A panel's PromQL with Grafana's variables in it parsed; ValueError naming the expression if it fails."""
    text = _GRAFANA_VARIABLE.sub(".*", _GRAFANA_RANGES.sub("5m", expr))
    try:
        return promql_parser.parse(text)
    except ValueError as err:
        raise ValueError(f"PromQL does not parse: {expr}: {err}") from err


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
    """Every metric name `expr` selects."""
    return _walk(parse(expr))
