"""Health endpoints and Prometheus metrics of a running server."""

from __future__ import annotations

from pathlib import Path

from apiserver_support import ApiServerEnv, apiserver, running_apiserver
from prometheus_client.parser import text_string_to_metric_families

from activity.devtools.natsd import free_port

__all__ = ["apiserver"]  # the fixture, imported for pytest

CREATE_LABELS = {
    "verb": "POST",
    "group": "activity.miloapis.com",
    "version": "v1alpha1",
    "resource": "auditlogqueries",
    "scope": "cluster",
    "component": "apiserver",
}


def _samples(env: ApiServerEnv) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(env.metrics())
        for sample in family.samples
    }


def _value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


# --- health ----------------------------------------------------------------------------------------------------


def test_health_endpoints_in_kubernetes_format(apiserver: ApiServerEnv) -> None:
    for endpoint in ("livez", "readyz", "healthz"):
        answer = apiserver.request("GET", f"/{endpoint}", client_cert=False)  # probes carry no credentials
        assert (answer.status, answer.body) == (200, b"ok")
    verbose = apiserver.request("GET", "/readyz?verbose").body.decode()
    assert verbose.splitlines() == ["[+]ping ok", "[+]storage ok", "[+]shutdown ok", "readyz check passed"]
    excluded = apiserver.request("GET", "/readyz?verbose&exclude=storage&exclude=nosuch").body.decode()
    assert "[+]storage excluded: ok" in excluded.splitlines()
    assert 'warn: some health checks cannot be excluded: no matches for "nosuch"' in excluded
    assert apiserver.request("GET", "/readyz/storage").body == b"ok"
    assert apiserver.request("GET", "/livez/nosuch").status == 404


def test_not_ready_once_shutdown_began(apiserver: ApiServerEnv) -> None:
    apiserver.handle.stopping = True  # what stop() sets first, before its shutdown delay
    try:
        ready = apiserver.request("GET", "/readyz?verbose")
        assert ready.status == 500
        assert "[-]shutdown failed: reason withheld" in ready.body.decode().splitlines()
        assert apiserver.request("GET", "/livez").status == 200
    finally:
        apiserver.handle.stopping = False


def test_readiness_fails_when_the_store_is_down_and_queries_get_503(tmp_path: Path) -> None:
    # a ClickHouse server DSN with nothing listening: the real client fails to connect
    dead_store = f"http://default:@127.0.0.1:{free_port()}/audit"
    with running_apiserver(tmp_path, dead_store) as env:
        assert env.request("GET", "/livez").status == 200
        ready = env.request("GET", "/readyz")
        assert ready.status == 500
        assert ready.body.decode().splitlines() == [
            "[+]ping ok",
            "[-]storage failed: reason withheld",
            "[+]shutdown ok",
            "readyz check failed",
        ]
        assert env.request("GET", "/readyz/storage").status == 500
        assert env.request("GET", "/readyz?exclude=storage").status == 200
        answer = env.create({"limit": 1})
        assert answer.status == 503
        status = answer.json()
        assert status["reason"] == "ServiceUnavailable" and answer.headers["Retry-After"] == "5"
        assert "127.0.0.1" not in status["message"] and "Error" not in status["message"]


# --- metrics ---------------------------------------------------------------------------------------------------


def test_request_metrics_move_with_requests(apiserver: ApiServerEnv) -> None:
    before = _samples(apiserver)
    assert apiserver.create({"limit": 5}).status == 201
    assert apiserver.create({"filter": "verb =="}).status == 422
    assert apiserver.request("GET", "/apis/activity.miloapis.com/v1alpha1/auditlogqueries").status == 405
    after = _samples(apiserver)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("apiserver_request_total", **CREATE_LABELS, code="201") == 1
    assert delta("apiserver_request_total", **CREATE_LABELS, code="422") == 1
    assert delta("apiserver_request_total", **(CREATE_LABELS | {"verb": "LIST"}), code="405") == 1
    assert delta("apiserver_request_duration_seconds_count", **CREATE_LABELS) == 2
    assert delta("activity_query_duration_seconds_count", outcome="ok") == 1
    assert delta("activity_query_duration_seconds_count", outcome="invalid") == 1
    assert delta("activity_query_results_sum") == 5
    assert delta("activity_cel_rejected_total") == 1
    assert delta("activity_storage_query_duration_seconds_count", outcome="ok") >= 1
    assert ("apiserver_current_inflight_requests", frozenset({("request_kind", "mutating")})) in after


def test_arbitrary_paths_do_not_create_metric_series(apiserver: ApiServerEnv) -> None:
    for i in range(3):
        apiserver.request("GET", f"/apis/activity.miloapis.com/v1alpha1/made-up-{i}")
    names = {dict(labels).get("resource") for name, labels in _samples(apiserver) if name == "apiserver_request_total"}
    assert names <= {"", "auditlogqueries"}
