"""The dashboards' PromQL and the alert rules run by a real Prometheus scraping `activity up` with demo traffic:
every panel query is accepted and (exporter panels aside) has samples, every recording rule has a value, and a
dead-lettered item makes its alert fire."""

from __future__ import annotations

import math
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from alert_rules_support import records, write_rules
from dashboards_support import metric_names, prom_targets
from up_support import running_up

from activity.devtools.dashboards import localprom, pipeline
from activity.devtools.dashboards.livestack import Exercised, exercise
from activity.devtools.up.layout import HOST, Ports

WAIT_S = 120.0  # the machine is shared; never asserted on


@pytest.fixture(scope="module")
def prometheus_binary() -> str:
    try:
        return localprom.binary()
    except localprom.PrometheusMissing as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{err}; CI installs it")
        pytest.skip(str(err))


def _anonymous_status(ports: Ports) -> int:
    """A request without credentials (TLS not verified: only the status matters)."""
    url = f"https://{HOST}:{ports.apiserver}/apis/activity.miloapis.com/v1alpha1"
    try:
        with urllib.request.urlopen(url, timeout=30, context=ssl._create_unverified_context()) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _waited(check: Callable[[], bool], what: Callable[[], str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_S:g} s: {what()}")
        time.sleep(1.0)


def test_panels_and_rules_on_a_real_prometheus(tmp_path: Path, prometheus_binary: str) -> None:
    rules = write_rules(tmp_path)
    exporter_only = {where for where, t in prom_targets() if metric_names(t.expr) <= pipeline.NATS_EXPORTER_METRICS}
    with running_up(tmp_path / "data", "--with-demo-traffic") as up:
        ports = Ports(up.port_base)
        with localprom.running(ports, tmp_path / "prometheus", [rules]) as prometheus:
            done = exercise(ports, up.kubeconfig, tmp_path / "kubecache")
            assert done == Exercised(refused_status=400, mixed_status=200, query_ok=True, bad_filter_refused=True)
            assert _anonymous_status(ports) in (401, 403)  # the panel of authentication failures has a series

            def empty_panels() -> list[str]:
                return [
                    where
                    for where, target in prom_targets()
                    if where not in exporter_only and not prometheus.query(target.expr)
                ]

            _waited(lambda: not empty_panels(), lambda: f"every panel has samples (still empty: {empty_panels()})")
            for where in sorted(exporter_only):  # accepted by Prometheus, empty without the exporter
                target = next(t for w, t in prom_targets() if w == where)
                assert prometheus.query(target.expr) == {}, where

            recorded = [r["record"] for r in records()]
            _waited(lambda: all(prometheus.query(n) for n in recorded), lambda: "every recording rule has a value")
            for name in recorded:
                [value] = prometheus.query(name).values()
                assert 0.0 <= value <= 1.0 or math.isnan(value), (name, value)
            # the refused (400) request is the sender's fault: no ingest error
            assert list(prometheus.query("activity:ingest_errors:ratio_rate5m").values()) == [0.0]

            def firing() -> set[str]:
                return {a["labels"]["alertname"] for a in prometheus.alerts() if a["state"] == "firing"}

            _waited(
                lambda: "ActivityDeadLettersIncreasing" in firing(), lambda: f"dead letters fire (firing: {firing()})"
            )
        assert prometheus.process.poll() is not None  # stopped by its PID


def test_a_query_prometheus_refuses_says_why(tmp_path: Path, prometheus_binary: str) -> None:
    with running_up(tmp_path / "data") as up, localprom.running(Ports(up.port_base), tmp_path / "p") as prometheus:
        with pytest.raises(localprom.QueryFailed, match=r"sum\(rate\(x\[5m\]\): .*parse error"):
            prometheus.query("sum(rate(x[5m])")
        assert prometheus.query("vector(1)") == {frozenset(): 1.0}
        assert prometheus.query("scalar(vector(2))") == {frozenset(): 2.0}
