"""A running `activity up` as the dashboards see it: the traffic that makes every charted series exist (a refused
request, a dead-lettered item, good and bad AuditLogQuery requests), and its three /metrics endpoints scraped.
The dashboard tests and the preview both use it."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings, malformed
from activity.devtools.up.layout import HOST, Ports

AUDIT_LOG_QUERY = {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery"}


def metrics_urls(ports: Ports) -> dict[str, str]:
    return {
        "webhook": f"http://{HOST}:{ports.webhook}/metrics",
        "apiserver": f"http://{HOST}:{ports.apiserver_metrics}/metrics",
        "consumer": f"http://{HOST}:{ports.consumer_probes}/metrics",
    }


def scrape(url: str) -> list[Metric]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return list(text_string_to_metric_families(response.read().decode()))


def scrape_all(ports: Ports) -> dict[str, list[Metric]]:
    return {service: scrape(url) for service, url in metrics_urls(ports).items()}


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


@dataclass(frozen=True)
class Exercised:
    refused_status: int  # the webhook's answer to a body that is not an EventList
    mixed_status: int  # its answer to an EventList with a good and an unstorable item
    query_ok: bool  # kubectl created a good AuditLogQuery
    bad_filter_refused: bool  # kubectl was refused an AuditLogQuery with an invalid CEL filter


def _kubectl_create(kubeconfig: Path, cache: Path, spec: dict[str, object]) -> subprocess.CompletedProcess[str]:
    create = ["create", "--validate=false", "-f", "-", "-o", "json"]
    return subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(cache), *create],
        input=yaml.safe_dump({**AUDIT_LOG_QUERY, "spec": spec}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def exercise(ports: Ports, kubeconfig: Path, cache: Path) -> Exercised:
    """Requests beside the demo traffic so that every labelled series the dashboards chart has a sample."""
    events_url = f"http://{HOST}:{ports.webhook}/events"
    refused = _post(events_url, b"this is not an EventList")
    good = next(iter(EventGenerator(GeneratorSettings(seed=99)).events(1)))
    items = [good, malformed(good, "not an object", 1)]
    mixed = _post(events_url, orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}))
    ok = _kubectl_create(kubeconfig, cache, {"startTime": "now-24h", "endTime": "now", "limit": 10})
    bad = _kubectl_create(kubeconfig, cache, {"startTime": "now-1h", "endTime": "now", "filter": "verb =="})
    return Exercised(refused, mixed, ok.returncode == 0, bad.returncode != 0)
