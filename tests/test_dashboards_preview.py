"""The preview's small PromQL evaluator agrees with Prometheus on what the panels use, and refuses the rest."""

from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from activity.devtools.dashboards.promeval import Evaluator, Scrapes, Unsupported, bucket_quantile

BEFORE = """
# TYPE req_total counter
req_total{code="200",job="a"} 100
req_total{code="200",job="b"} 50
req_total{code="404",job="a"} 10
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} 0
lat_seconds_bucket{le="0.5"} 0
lat_seconds_bucket{le="+Inf"} 0
lat_seconds_sum 0
lat_seconds_count 0
# TYPE up_now gauge
up_now{job="a"} 1
"""
AFTER = """
# TYPE req_total counter
req_total{code="200",job="a"} 120
req_total{code="200",job="b"} 60
req_total{code="404",job="a"} 20
# TYPE lat_seconds histogram
lat_seconds_bucket{le="0.1"} 50
lat_seconds_bucket{le="0.5"} 90
lat_seconds_bucket{le="+Inf"} 100
lat_seconds_sum 20
lat_seconds_count 100
# TYPE up_now gauge
up_now{job="a"} 0
"""


@pytest.fixture
def evaluator() -> Evaluator:
    before, after = (list(text_string_to_metric_families(t)) for t in (BEFORE, AFTER))
    return Evaluator(Scrapes(before, after, seconds=10.0))


def _plain(result: dict[frozenset[tuple[str, str]], float]) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(k)): v for k, v in result.items()}


def test_rates_are_summed_by_the_labels_asked_for(evaluator: Evaluator) -> None:
    got = evaluator.evaluate("sum by (code) (rate(req_total[$__rate_interval]))")
    assert _plain(got) == {(("code", "200"),): 3.0, (("code", "404"),): 1.0}


def test_matchers_and_a_grafana_all_variable(evaluator: Evaluator) -> None:
    assert _plain(evaluator.evaluate('sum(rate(req_total{job=~"$job", code!="404"}[5m]))')) == {(): 3.0}
    assert _plain(evaluator.evaluate('max(up_now{job="a"})')) == {(): 0.0}


def test_no_error_series_is_a_zero_ratio(evaluator: Evaluator) -> None:
    expr = '(sum(rate(req_total{code=~"5.."}[5m])) or vector(0)) / sum(rate(req_total[5m]))'
    assert _plain(evaluator.evaluate(expr)) == {(): 0.0}


def test_histogram_quantile_and_mean(evaluator: Evaluator) -> None:
    p50 = evaluator.evaluate("histogram_quantile(0.5, sum by (le) (rate(lat_seconds_bucket[5m])))")
    p90 = evaluator.evaluate("histogram_quantile(0.9, sum by (le) (rate(lat_seconds_bucket[5m])))")
    mean = evaluator.evaluate("sum(rate(lat_seconds_sum[5m])) / sum(rate(lat_seconds_count[5m]))")
    assert _plain(p50) == {(): pytest.approx(0.1)}
    assert _plain(p90) == {(): pytest.approx(0.5)}
    assert _plain(mean) == {(): pytest.approx(0.2)}


def test_bucket_quantile_follows_prometheus() -> None:
    buckets = [(0.1, 50.0), (0.5, 90.0), (math.inf, 100.0)]
    assert bucket_quantile(0.25, buckets) == pytest.approx(0.05)  # the first bucket starts at 0
    assert bucket_quantile(0.7, buckets) == pytest.approx(0.3)
    assert bucket_quantile(0.99, buckets) == 0.5  # in +Inf: the highest finite bound
    assert math.isnan(bucket_quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]))


@pytest.mark.parametrize("expr", ["topk(1, req_total)", "quantile_over_time(0.5, up_now[5m])", "req_total > 1"])
def test_what_it_cannot_evaluate_is_refused_not_guessed(evaluator: Evaluator, expr: str) -> None:
    with pytest.raises(Unsupported):
        evaluator.evaluate(expr)
