"""OTLP tracing from a TracingConfiguration, and the W3C trace context carried into the SQL comment."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from apiserver_support import running_apiserver
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from apiserver.machinery.tracing import TracingConfiguration, load_tracing_configuration
from auditlog.config import ConfigError

T = TypeVar("T")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class StatementRecorder:
    """Wraps a store client: records the SQL of each statement, then runs it."""

    def __init__(self, client: Any, statements: list[str]) -> None:
        self._client = client
        self._statements = statements

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if name not in ("query", "raw_query", "command"):
            return method

        def recorded(sql: str, *args: Any, **kwargs: Any) -> Any:
            self._statements.append(sql)
            return method(sql, *args, **kwargs)

        return recorded


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """A test double of an OpenTelemetry collector: keeps the spans it is sent."""

    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.lock = threading.Lock()

    def Export(self, request: Any, context: Any) -> Any:  # the gRPC method's name
        with self.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return trace_service_pb2.ExportTraceServiceResponse()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = Collector()
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(grace=None)


def test_spans_are_exported_and_the_trace_reaches_the_sql(
    tmp_path: Path, store_dsn: str, collector: tuple[Collector, int]
) -> None:
    servicer, port = collector
    tracing = TracingConfiguration(endpoint=f"127.0.0.1:{port}", sampling_rate_per_million=1_000_000)
    with running_apiserver(tmp_path / "server", store_dsn, tracing=tracing) as env:
        statements: list[str] = []
        store = env.handle.store
        run = store.run

        async def recording_run(fn: Callable[[Any], T]) -> T:
            # a spy: every statement the store runs is recorded, then really run
            return await run(lambda client: fn(StatementRecorder(client, statements)))

        store.run = recording_run  # type: ignore[method-assign]
        answer = env.create({"limit": 1}, headers={"traceparent": TRACEPARENT})
        assert answer.status == 201
    # stopping the server flushed the exporter
    assert statements and all(sql.startswith(f"/* 00-{TRACE_ID}-") for sql in statements)
    spans = [s for s in servicer.spans if s.trace_id.hex() == TRACE_ID]
    assert [s.name for s in spans] == ["POST /apis/activity.miloapis.com/v1alpha1/auditlogqueries"]
    assert spans[0].parent_span_id.hex() == "00f067aa0ba902b7"
    assert {sql.split("-")[2] for sql in statements} == {spans[0].span_id.hex()}  # the request's own span


def test_tracing_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "tracing.yaml"
    path.write_text(
        "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: TracingConfiguration\n"
        "endpoint: otel-collector:4317\nsamplingRatePerMillion: 100\n"
    )
    assert load_tracing_configuration(path) == TracingConfiguration("otel-collector:4317", 100)
    path.write_text("apiVersion: apiserver.config.k8s.io/v1beta1\nkind: TracingConfiguration\n")
    assert load_tracing_configuration(path) == TracingConfiguration("localhost:4317", 0)  # kube's defaults
    for bad, fragment in [
        ("kind: EgressSelectorConfiguration\napiVersion: apiserver.config.k8s.io/v1beta1\n", "expected kind"),
        (
            "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: TracingConfiguration\n"
            "samplingRatePerMillion: 2000000\n",
            "0..1000000",
        ),
        ("apiVersion: apiserver.config.k8s.io/v1beta1\nkind: TracingConfiguration\nendpiont: x:1\n", "endpiont"),
        ("- [", str(path)),
    ]:
        path.write_text(bad)
        with pytest.raises(ConfigError, match=fragment):
            load_tracing_configuration(path)
