"""The query path's own Prometheus metrics, on the server's registry beside the apiserver_* request metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from apiserver.machinery.metrics import QUERY_BUCKETS

RESULT_BUCKETS = (0, 1, 10, 50, 100, 250, 500, 1000, 5000)


class QueryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.duration = Histogram(
            "activity_query_duration_seconds",
            "Time to answer one AuditLogQuery (validation, CEL compile, storage read, response), by outcome.",
            ["outcome"],
            buckets=QUERY_BUCKETS,
            registry=registry,
        )
        self.results = Histogram(
            "activity_query_results",
            "Events returned per AuditLogQuery page.",
            buckets=RESULT_BUCKETS,
            registry=registry,
        )
        self.cel_rejected = Counter(
            "activity_cel_rejected_total",
            "AuditLogQuery filters refused as invalid (parse, type check or untranslatable construct).",
            registry=registry,
        )
