"""The PrometheusRule of the observability component as the rule tests read it, and promtool to run its checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from manifests_support import REPO, build, one

RULE_TESTS = REPO / "tests" / "rules"
RULES_FILE = "prometheusrules.yaml"  # the name the unit tests' rule_files give
RUNBOOKS = REPO / "docs" / "runbooks"

# Names the rules read that the Activity services do not export, by who does. Anything else must be scraped from
# the running services (tests/test_alert_rules.py).
EXTERNAL_METRICS = {
    "up": "Prometheus, one series per scrape target",
    "aggregator_unavailable_apiservice": "kube-apiserver's aggregator",
    "certmanager_certificate_expiration_timestamp_seconds": "cert-manager's controller",
    "jetstream_consumer_num_pending": "prometheus-nats-exporter -jsz=all",
    "jetstream_server_total_message_bytes": "prometheus-nats-exporter -jsz=all",
    "jetstream_server_max_storage": "prometheus-nats-exporter -jsz=all",
}


def prometheus_rule() -> dict[str, Any]:
    """The PrometheusRule as the observability component builds it."""
    return one(build("components/observability"), "PrometheusRule")


def rules() -> Iterator[dict[str, Any]]:
    for group in prometheus_rule()["spec"]["groups"]:
        yield from group["rules"]


def alerts() -> list[dict[str, Any]]:
    return [r for r in rules() if "alert" in r]


def records() -> list[dict[str, Any]]:
    return [r for r in rules() if "record" in r]


def write_rules(folder: Path, spec: dict[str, Any] | None = None) -> Path:
    """The rule groups as a plain Prometheus rules file (what promtool and Prometheus read)."""
    path = folder / RULES_FILE
    path.write_text(yaml.safe_dump(spec if spec is not None else prometheus_rule()["spec"], sort_keys=False))
    return path


def promtool() -> str:
    """promtool's path; skips without it on a developer machine, fails in CI (which installs it)."""
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian/Ubuntu: apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI installs it, so the rules would go untested")
        pytest.skip(message)
    return found


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def unit_test_files() -> list[Path]:
    return sorted(RULE_TESTS.glob("*_test.yaml"))


@dataclass(frozen=True)
class Selector:
    name: str
    equal: tuple[tuple[str, str], ...]  # label = value matchers


def selectors(expr: str) -> list[Selector]:
    """Every series selector in `expr` with its equality matchers, from a real PromQL parse."""
    found: list[Selector] = []

    def walk(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers.matchers
            equal = tuple((m.name, m.value) for m in matchers if m.op == promql_parser.MatchOp.Equal)
            found.append(Selector(node.name or dict(equal).get("__name__", ""), equal))
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for arg in node.args or ():
                walk(arg)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if node.param is not None:
                walk(node.param)
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return found
