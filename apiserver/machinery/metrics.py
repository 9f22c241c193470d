"""Prometheus metrics under the names kube-apiserver dashboards already chart, plus the store's latency.

Each server has its own registry (several servers may share a process: `activity up`, the tests), exposed on
a separate plain-HTTP port so scrapers need no client certificate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from apiserver.machinery.discovery import GroupVersion
from apiserver.machinery.middlewares import READ_ONLY_METHODS

COMPONENT = "apiserver"
# kube-apiserver's buckets for apiserver_request_duration_seconds.
REQUEST_BUCKETS = (
    0.005,
    0.025,
    0.05,
    0.1,
    0.2,
    0.4,
    0.6,
    0.8,
    1.0,
    1.25,
    1.5,
    2,
    3,
    4,
    5,
    6,
    8,
    10,
    15,
    20,
    30,
    45,
    60,
)
QUERY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass(frozen=True)
class RequestLabels:
    verb: str
    group: str
    version: str
    resource: str
    scope: str


def request_labels(method: str, path: str, gv: GroupVersion) -> RequestLabels:
    """kube-apiserver's labels. Only our own resources get resource labels: a label per arbitrary path a client
    invents would let anyone grow the series count without bound."""
    parts = path.strip("/").split("/")
    known = {r.name for r in gv.resources}
    if len(parts) >= 4 and parts[:3] == ["apis", gv.group, gv.version] and parts[3] in known:
        named = len(parts) > 4
        verb = "LIST" if method == "GET" and not named else method
        return RequestLabels(verb, gv.group, gv.version, parts[3], "resource" if named else "cluster")
    return RequestLabels(method, "", "", "", "")


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["verb", "group", "version", "resource", "scope", "component"]
        self.requests = Counter(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, group, version, resource, scope, component, "
            "and HTTP response code.",
            [*labels, "code"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, group, version, resource, scope and component.",
            labels,
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.inflight = Gauge(
            "apiserver_current_inflight_requests",
            "Requests being served right now, by request kind (readOnly, mutating).",
            ["request_kind"],
            registry=self.registry,
        )
        self.storage_duration = Histogram(
            "activity_storage_query_duration_seconds",
            "Latency of SELECTs sent to the store, by outcome.",
            ["outcome"],
            buckets=QUERY_BUCKETS,
            registry=self.registry,
        )

    def middleware(self, gv: GroupVersion) -> Middleware:
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            labels = request_labels(request.method, request.path, gv)
            kind = "readOnly" if request.method in READ_ONLY_METHODS else "mutating"
            started = time.perf_counter()
            code = 500  # if the handler escapes every recovery, it still counts as a server error
            with self.inflight.labels(kind).track_inprogress():
                try:
                    response = await handler(request)
                    code = response.status
                    return response
                except web.HTTPException as err:
                    code = err.status
                    raise
                finally:
                    values = (labels.verb, labels.group, labels.version, labels.resource, labels.scope, COMPONENT)
                    self.requests.labels(*values, str(code)).inc()
                    self.request_duration.labels(*values).observe(time.perf_counter() - started)

        return measure

    async def serve(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def app(self) -> web.Application:
        """The plain-HTTP metrics listener's application."""
        app = web.Application()
        app.router.add_get("/metrics", self.serve)
        return app
