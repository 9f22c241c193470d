"""The optional nats-exporter component: prometheus-nats-exporter polling the same NATS the ingest programs use,
with the JetStream collector the dashboards and alerts need, scraped by its ServiceMonitor."""

from __future__ import annotations

from urllib.parse import urlsplit

from manifests_support import build, find, one

TARGET = "components/nats-exporter"


def test_it_polls_the_monitoring_port_of_the_nats_the_programs_publish_to() -> None:
    docs = build(TARGET)
    (container,) = one(docs, "Deployment", "activity-nats-exporter")["spec"]["template"]["spec"]["containers"]
    *flags, url = container["args"]
    assert "-jsz=all" in flags  # streams and consumers: the jetstream_stream_* and jetstream_consumer_* names
    nats_url = one(build("components/ingest"), "ConfigMap", "activity-ingest")["data"]["nats-url"]
    assert urlsplit(url).hostname == urlsplit(nats_url).hostname
    assert urlsplit(url).port == 8222  # nats-server's monitoring port, as the NATS Service names it


def test_its_service_monitor_scrapes_the_port_it_serves() -> None:
    docs = build(TARGET)
    (monitor,) = find(docs, "ServiceMonitor")
    (service,) = [
        s
        for s in find(docs, "Service")
        if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    deployment = one(docs, "Deployment", "activity-nats-exporter")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    [endpoint] = monitor["spec"]["endpoints"]
    [port] = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
    [served] = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert f"-port={served['containerPort']}" in container["args"]
