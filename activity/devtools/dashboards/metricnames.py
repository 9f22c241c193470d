"""A panel's PromQL parsed by a real PromQL parser (promql-parser), Grafana's variables and all."""

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
