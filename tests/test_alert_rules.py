"""The SLO recording rules and alerts (PrometheusRule of the observability component): valid against the CRD,
accepted by promtool, every rule unit-tested by promtool over synthetic series (firing and not), those tests able
to fail, and every metric name they read exported by the running services or by a named exporter."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from alert_rules_support import (
    EXTERNAL_METRICS,
    alerts,
    prometheus_rule,
    records,
    rules,
    run_promtool,
    selectors,
    unit_test_files,
    write_rules,
)
from manifests_support import CRDS, crd_schemas
from up_support import running_up

from activity.devtools.dashboards import pipeline
from activity.devtools.dashboards.livestack import Exercised, exercise, scrape_all
from activity.devtools.up.layout import Ports
from ingest.consumer.freshness import AGE_BUCKETS

SCRAPE_TIMEOUT_S = 90.0  # the machine is shared; never asserted on


def test_the_prometheus_rule_validates_against_its_crd() -> None:
    if not CRDS.is_dir():
        pytest.skip(f"no CRD folder beside the repository ({CRDS})")
    schema = crd_schemas()[("monitoring.coreos.com/v1", "PrometheusRule")]
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(prometheus_rule())
    ]
    assert errors == []


def test_promtool_accepts_every_rule(tmp_path: Path) -> None:
    result = run_promtool("check", "rules", str(write_rules(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(list(rules()))} rules found" in result.stdout


def _unit_tests(folder: Path, spec: dict[str, Any] | None = None) -> Any:
    write_rules(folder, spec)
    for path in unit_test_files():
        shutil.copy(path, folder / path.name)
    return run_promtool("test", "rules", *(p.name for p in unit_test_files()), cwd=folder)


def test_every_rule_passes_its_promtool_unit_tests(tmp_path: Path) -> None:
    result = _unit_tests(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def _expectations() -> tuple[set[tuple[str, str]], set[str], set[str]]:
    """((alertname, severity) seen firing, alertnames seen not firing, expressions of promql_expr_test)."""
    fired: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    exprs: set[str] = set()
    for path in unit_test_files():
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts") or []:
                    fired.add((case["alertname"], alert["exp_labels"]["severity"]))
                if not case.get("exp_alerts"):
                    quiet.add(case["alertname"])
            exprs.update(case["expr"] for case in test.get("promql_expr_test", []))
    return fired, quiet, exprs


def test_every_rule_has_a_case_that_fires_and_one_that_does_not() -> None:
    fired, quiet, exprs = _expectations()
    for rule in alerts():
        assert (rule["alert"], rule["labels"]["severity"]) in fired, f"{rule['alert']} never seen firing"
        assert rule["alert"] in quiet, f"{rule['alert']} never seen staying quiet"
    for rule in records():
        assert any(rule["record"] in expr for expr in exprs), f"{rule['record']} has no promql_expr_test"


@pytest.mark.parametrize(
    ("what", "old", "new"),
    [
        ("pages at a tenth of the burn rate", "(14.4 *", "(1.44 *"),
        ("counts the sender's 4xx as ingest failures", 'code!~"4.."', 'code=~".+"'),
        ("reads another bucket as the freshness threshold", 'le="10.0"', 'le="5.0"'),
        ("takes kube-apiserver's 5xx for ours", 'job="activity-apiserver",code=~"5.."', 'code=~"5.."'),
        ("has no error ratio while nothing fails", " or vector(0)", ""),
    ],
)
def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path, what: str, old: str, new: str) -> None:
    text = yaml.safe_dump(prometheus_rule()["spec"], sort_keys=False, width=1000)
    assert old in text
    broken = yaml.safe_load(text.replace(old, new))
    result = _unit_tests(tmp_path, broken)
    assert result.returncode != 0, f"a rule that {what} passed the unit tests"


def test_the_freshness_threshold_is_a_bucket_bound_of_the_consumer() -> None:
    assert pipeline.FRESHNESS_SLO_SECONDS in AGE_BUCKETS
    wanted = f'le="{pipeline.FRESHNESS_SLO_SECONDS!r}"'
    assert all(wanted in r["expr"] for r in records() if r["record"].startswith("activity:freshness_late:"))


def _used() -> dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]]:
    """metric name → (rule, equality matchers) of every selector in the rules, recorded series left out."""
    recorded = {r["record"] for r in records()}
    used: dict[str, list[tuple[str, tuple[tuple[str, str], ...]]]] = {}
    for rule in rules():
        for selector in selectors(rule["expr"]):
            if selector.name not in recorded:
                used.setdefault(selector.name, []).append((rule.get("alert") or rule["record"], selector.equal))
    return used


def test_external_metrics_are_all_used() -> None:
    assert set(EXTERNAL_METRICS) <= set(_used()), "a listed external metric no rule reads"


def test_every_metric_and_label_value_the_rules_read_is_exported_by_the_running_services(tmp_path: Path) -> None:
    used = _used()
    ours = set(used) - set(EXTERNAL_METRICS)
    with running_up(tmp_path / "data", "--with-demo-traffic") as up:
        ports = Ports(up.port_base)
        done = exercise(ports, up.kubeconfig, tmp_path / "kubecache")
        assert done == Exercised(refused_status=400, mixed_status=200, query_ok=True, bad_filter_refused=True)
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while True:
            samples = [s for families in scrape_all(ports).values() for f in families for s in f.samples]
            exported = {s.name for s in samples}
            if ours <= exported or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    assert sorted(ours - exported) == [], "rules read metrics no service exports"
    # label values the rules select on exist too (job is Prometheus' own label, set from the Service's name)
    missing = []
    for name in sorted(ours):
        labelled = [s.labels for s in samples if s.name == name]
        for where, equal in used[name]:
            wanted = {k: v for k, v in equal if k != "job"}
            if not any(all(labels.get(k) == v for k, v in wanted.items()) for labels in labelled):
                missing.append(f"{where}: {name}{wanted}")
    assert missing == []
