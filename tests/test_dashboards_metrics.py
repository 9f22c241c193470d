"""Every Prometheus metric a panel charts is exported by the running services: `activity up` with demo traffic
(plus a refused request, a dead-lettered item, a good and a bad AuditLogQuery), its three /metrics scraped."""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path

import pytest
from dashboards_support import kept_labels, label_variables, metric_names, prom_expressions, prom_targets, sample_names
from up_support import running_up

from activity.devtools.dashboards import pipeline
from activity.devtools.dashboards.livestack import Exercised, exercise, scrape_all
from activity.devtools.dashboards.metricnames import parse
from activity.devtools.up.layout import Ports

SCRAPE_TIMEOUT_S = 90.0  # the machine is shared; never asserted on


def _used() -> dict[str, set[str]]:
    """metric name → the panels and variables using it."""
    used: dict[str, set[str]] = defaultdict(set)
    for where, expr in prom_expressions():
        for name in metric_names(expr):
            used[name].add(where)
    for where, variable in label_variables():
        used[variable.metric].add(where)
    return used


def test_every_metric_a_panel_uses_is_exported_by_the_running_services(tmp_path: Path) -> None:
    used = _used()
    ours = set(used) - pipeline.NATS_EXPORTER_METRICS
    with running_up(tmp_path / "data", "--with-demo-traffic") as up:
        ports = Ports(up.port_base)
        done = exercise(ports, up.kubeconfig, tmp_path / "kubecache")
        assert done == Exercised(refused_status=400, mixed_status=200, query_ok=True, bad_filter_refused=True)
        deadline = time.monotonic() + SCRAPE_TIMEOUT_S
        while True:
            scraped = scrape_all(ports)
            exported = set().union(*(sample_names(families) for families in scraped.values()))
            if ours <= exported or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    missing = {name: sorted(used[name]) for name in sorted(ours - exported)}
    assert missing == {}, "panels chart metrics no service exports"
    # the apiserver_* names come from the API server, not from a look-alike elsewhere
    assert {n for n in ours if n.startswith("apiserver_")} <= sample_names(scraped["apiserver"])


def test_exporter_metrics_are_only_in_panels_that_say_they_need_the_exporter() -> None:
    used = _used()
    assert set(pipeline.NATS_EXPORTER_METRICS) <= set(used), "a listed exporter metric no panel uses"
    for panel in pipeline.DASHBOARD.panels:
        names = set().union(*(metric_names(t.expr) for t in panel.targets if isinstance(t, pipeline.PromTarget)))
        if names & pipeline.NATS_EXPORTER_METRICS:
            assert pipeline.EXPORTER_NOTE in panel.description, panel.title


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval])))', {"a_bucket"}),
        ("sum(rate(a_sum[5m])) / sum(rate(a_count[5m]))", {"a_sum", "a_count"}),
        ('max({__name__="b_total", code="500"}) or vector(0)', {"b_total"}),
        ("max_over_time(c[1h:5m]) - on() group_left () (-d offset 1h)", {"c", "d"}),
        ("topk(3, e) > bool 2", {"e"}),
    ],
)
def test_metric_names_come_from_a_real_promql_parse(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_expression_that_does_not_parse_is_named() -> None:
    with pytest.raises(ValueError, match=r"PromQL does not parse: sum\(rate\(x\[5m\]\)"):
        metric_names("sum(rate(x[5m])")


def test_every_legend_label_is_kept_by_its_expression() -> None:
    for where, target in prom_targets():
        kept = kept_labels(parse(target.expr))
        wanted = set(re.findall(r"\{\{(\w+)\}\}", target.legend))
        if kept is not None:
            assert wanted <= kept, f"{where}: legend {target.legend!r} needs labels {wanted - kept} the query drops"
