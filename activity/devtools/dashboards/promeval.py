"""Enough PromQL to preview the dashboards without a Prometheus: the subset the panels use, evaluated at the
second of two scrapes, with every range function taken over the time between them.

Selectors with matchers, rate/increase, vector(), sum/max/min/avg by/without, histogram_quantile (Prometheus' linear
interpolation), arithmetic between vectors with equal label sets or with scalars, and or. Anything else raises
Unsupported: the preview says so instead of drawing something wrong.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import promql_parser
from prometheus_client.metrics_core import Metric

from activity.devtools.dashboards.metricnames import parse

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]


class Unsupported(ValueError):
    """A construct this preview does not evaluate."""


@dataclass(frozen=True)
class Scrapes:
    before: list[Metric]
    after: list[Metric]
    seconds: float  # between the two


def _samples(families: Iterable[Metric]) -> dict[str, Vector]:
    found: dict[str, Vector] = defaultdict(dict)
    for family in families:
        for s in family.samples:
            found[s.name][frozenset(s.labels.items())] = s.value
    return found


def _matches(labels: Labels, matchers: list[promql_parser.Matcher]) -> bool:
    have = dict(labels)
    for m in matchers:
        value = have.get(m.name, "")
        if m.op == promql_parser.MatchOp.Equal and value != m.value:
            return False
        if m.op == promql_parser.MatchOp.NotEqual and value == m.value:
            return False
        if m.op == promql_parser.MatchOp.Re and not re.fullmatch(m.value, value):
            return False
        if m.op == promql_parser.MatchOp.NotRe and re.fullmatch(m.value, value):
            return False
    return True


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over cumulative (upper bound, count) buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][0] != math.inf or buckets[-1][1] <= 0:
        return math.nan
    rank = q * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == math.inf:
                return lower_bound  # the highest finite bound, as Prometheus answers
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / max(count - lower_count, 1e-12)
        lower_bound, lower_count = bound, count
    return math.nan


class Evaluator:
    def __init__(self, scrapes: Scrapes) -> None:
        self.before, self.after, self.seconds = _samples(scrapes.before), _samples(scrapes.after), scrapes.seconds

    def evaluate(self, expr: str) -> Vector:
        try:
            tree = parse(expr)
        except ValueError as err:
            raise Unsupported(str(err)) from err
        result = self._eval(tree)
        if isinstance(result, float):
            return {frozenset(): result}
        return result

    def _select(self, node: promql_parser.VectorSelector, source: dict[str, Vector]) -> Vector:
        if not node.name:
            raise Unsupported("a selector without a metric name")
        matchers = node.matchers.matchers
        return {k: v for k, v in source.get(node.name, {}).items() if _matches(k, matchers)}

    def _eval(self, node: object) -> Vector | float:
        if isinstance(node, promql_parser.NumberLiteral):
            return float(node.val)
        if isinstance(node, promql_parser.ParenExpr):
            return self._eval(node.expr)
        if isinstance(node, promql_parser.VectorSelector):
            return self._select(node, self.after)
        if isinstance(node, promql_parser.Call):
            return self._call(node)
        if isinstance(node, promql_parser.AggregateExpr):
            return self._aggregate(node)
        if isinstance(node, promql_parser.BinaryExpr):
            return self._binary(node)
        raise Unsupported(type(node).__name__)

    def _call(self, node: promql_parser.Call) -> Vector:
        name = node.func.name
        if name in ("rate", "increase"):
            (matrix,) = node.args
            if not isinstance(matrix, promql_parser.MatrixSelector):
                raise Unsupported(f"{name} of a subquery")
            now = self._select(matrix.vector_selector, self.after)
            then = self._select(matrix.vector_selector, self.before)
            grown = {k: max(v - then.get(k, 0.0), 0.0) for k, v in now.items()}
            return grown if name == "increase" else {k: v / self.seconds for k, v in grown.items()}
        if name == "histogram_quantile":
            q, inner = self._eval(node.args[0]), self._eval(node.args[1])
            if not isinstance(q, float) or isinstance(inner, float):
                raise Unsupported("histogram_quantile(scalar, vector) only")
            groups: dict[Labels, list[tuple[float, float]]] = defaultdict(list)
            for labels, count in inner.items():
                rest = frozenset((k, v) for k, v in labels if k != "le")
                groups[rest].append((float(dict(labels)["le"]), count))
            return {k: bucket_quantile(q, b) for k, b in groups.items()}
        if name == "vector":
            value = self._eval(node.args[0])
            if not isinstance(value, float):
                raise Unsupported("vector() of a vector")
            return {frozenset(): value}
        raise Unsupported(f"function {name}")

    def _aggregate(self, node: promql_parser.AggregateExpr) -> Vector:
        ops: dict[str, Callable[[list[float]], float]] = {
            "sum": sum,
            "max": max,
            "min": min,
            "avg": lambda xs: sum(xs) / len(xs),
        }
        op = str(node.op)
        if op not in ops:
            raise Unsupported(f"aggregation {op}")
        inner = self._eval(node.expr)
        if isinstance(inner, float):
            raise Unsupported(f"{op} of a scalar")
        modifier = node.modifier
        groups: dict[Labels, list[float]] = defaultdict(list)
        for labels, value in inner.items():
            if modifier is None:
                key: Labels = frozenset()
            elif modifier.type == promql_parser.AggModifierType.By:
                key = frozenset((k, v) for k, v in labels if k in modifier.labels)
            else:
                key = frozenset((k, v) for k, v in labels if k not in modifier.labels)
            groups[key].append(value)
        return {k: ops[op](v) for k, v in groups.items()}

    def _binary(self, node: promql_parser.BinaryExpr) -> Vector | float:
        lhs, rhs, op = self._eval(node.lhs), self._eval(node.rhs), str(node.op)
        if op == "or" and isinstance(lhs, dict) and isinstance(rhs, dict):
            return {**rhs, **lhs}
        arithmetic: dict[str, Callable[[float, float], float]] = {
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b if b else math.nan,
        }
        if op not in arithmetic:
            raise Unsupported(f"operator {op}")
        f = arithmetic[op]
        if isinstance(lhs, float) and isinstance(rhs, float):
            return f(lhs, rhs)
        if isinstance(lhs, float):
            assert isinstance(rhs, dict)
            return {k: f(lhs, v) for k, v in rhs.items()}
        if isinstance(rhs, float):
            return {k: f(v, rhs) for k, v in lhs.items()}
        return {k: f(v, rhs[k]) for k, v in lhs.items() if k in rhs}
