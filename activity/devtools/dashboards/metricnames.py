"""A panel's PromQL parsed by a real PromQL parser (promql-parser), Grafana's variables and all."""

from __future__ import annotations

import re

import promql_parser

# Grafana's range variables are not PromQL; any valid duration parses the same way.
_GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")  # a label variable in a =~ matcher: `.*` is its `All`


def concrete(expr: str, window: str = "5m") -> str:
    """A panel's PromQL as Prometheus itself can run it: Grafana's range variables become `window`, a label
    variable its `All` (`.*`)."""
    return _GRAFANA_VARIABLE.sub(".*", _GRAFANA_RANGES.sub(window, expr))


def parse(expr: str) -> promql_parser.Expr:
    """A panel's PromQL with Grafana's variables in it parsed; ValueError naming the expression if it fails."""
    text = concrete(expr)
    try:
        return promql_parser.parse(text)
    except ValueError as err:
        raise ValueError(f"PromQL does not parse: {expr}: {err}") from err
