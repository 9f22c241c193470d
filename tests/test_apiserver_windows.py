"""Bounds a request meets on a running API server: `?timeout=` (a Go duration, as client-go writes it) and time
windows too long to query, refused before any store work."""

from __future__ import annotations

from apiserver_support import ApiServerEnv, apiserver
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["apiserver"]  # the fixture, imported for pytest


def _store_calls(env: ApiServerEnv) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(env.metrics())
        for sample in family.samples
        if sample.name == "activity_storage_query_duration_seconds_count"
    )


def test_url_timeouts_follow_kube_apiserver(apiserver: ApiServerEnv) -> None:
    # 0 or a negative timeout means the server's own limit, as in kube-apiserver
    for timeout in ("0", "0s", "-1s", "1h2m3.5s", "500ms", "2562047h"):
        assert apiserver.request("GET", f"/apis?timeout={timeout}").status == 200, timeout
    refused = apiserver.request("GET", "/apis?timeout=30")
    assert refused.status == 400
    assert "invalid timeout in the URL: '30' is not a duration: a unit is missing" in refused.json()["message"]
    # an expired timeout is named the Go way
    expired = apiserver.create({"filter": "verb == 'get'"}, query="?timeout=1ns")
    assert expired.status == 504
    assert expired.json()["message"].endswith("allotted timeout of 1ns")


def test_an_absurd_window_is_refused_before_any_store_work(apiserver: ApiServerEnv) -> None:
    before = _store_calls(apiserver)
    answer = apiserver.create({"startTime": "0001-01-01T00:00:00Z", "endTime": "9999-12-31T23:59:59Z"})
    assert answer.status == 422
    message = answer.json()["message"]
    assert "is 3652058d23h59m59s; the maximum is 30d" in message and "121,733 more windows" in message
    assert _store_calls(apiserver) == before
