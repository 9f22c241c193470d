"""OpenTelemetry tracing configured the way kube-apiserver is: a TracingConfiguration file with an OTLP gRPC
`endpoint` and `samplingRatePerMillion`, parent-based sampling, W3C trace context in and out.

Without a file nothing is exported, but an incoming `traceparent` is still continued, so the SQL comment of a
query carries the caller's trace ID and the store's query log can be joined with the caller's trace.

Ours, not opentelemetry-instrumentation-aiohttp-server: its middleware works only after the global instrumentor
ran, which patches every aiohttp Application in the process (the webhook and probes `activity up` hosts too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from auditlog.config import ConfigError

API_VERSIONS = ("apiserver.config.k8s.io/v1", "apiserver.config.k8s.io/v1beta1", "apiserver.config.k8s.io/v1alpha1")
KIND = "TracingConfiguration"
DEFAULT_ENDPOINT = "localhost:4317"  # kube-apiserver's default
SERVICE_NAME = "activity-apiserver"

_propagator = TraceContextTextMapPropagator()


@dataclass(frozen=True)
class TracingConfiguration:
    endpoint: str = DEFAULT_ENDPOINT
    sampling_rate_per_million: int = 0


def load_tracing_configuration(path: Path) -> TracingConfiguration:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--tracing-config-file {path}: {err}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"--tracing-config-file {path}: expected a {KIND} object")
    if document.get("kind") != KIND or document.get("apiVersion") not in API_VERSIONS:
        raise ConfigError(
            f"--tracing-config-file {path}: expected kind {KIND} with apiVersion {API_VERSIONS[1]}, "
            f"got kind {document.get('kind')!r} apiVersion {document.get('apiVersion')!r}"
        )
    unknown = set(document) - {"apiVersion", "kind", "endpoint", "samplingRatePerMillion"}
    if unknown:
        raise ConfigError(f"--tracing-config-file {path}: unknown fields {sorted(unknown)}")
    endpoint = document.get("endpoint") or DEFAULT_ENDPOINT
    rate = document.get("samplingRatePerMillion", 0)
    if not isinstance(endpoint, str):
        raise ConfigError(f"--tracing-config-file {path}: endpoint must be a host:port string")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 0 <= rate <= 1_000_000:
        raise ConfigError(f"--tracing-config-file {path}: samplingRatePerMillion must be an integer 0..1000000")
    return TracingConfiguration(endpoint, rate)


def tracer_provider(config: TracingConfiguration | None) -> TracerProvider:
    """A provider of our own (not the global one: several servers may share a process)."""
    rate = config.sampling_rate_per_million / 1_000_000 if config else 0.0
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}), sampler=ParentBased(TraceIdRatioBased(rate))
    )
    if config is not None:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # kube-apiserver also speaks plain gRPC to its collector (usually a sidecar or node-local agent).
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint, insecure=True)))
    return provider


def traceparent() -> str:
    """The W3C traceparent of the current span ("" outside any trace), for SQL comments."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")


def middleware(tracer: trace.Tracer) -> Middleware:
    @web.middleware
    async def traced(request: web.Request, handler: Handler) -> web.StreamResponse:
        parent = _propagator.extract(request.headers)
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route is not None else 'unmatched'}"
        attributes = {"http.request.method": request.method, "url.path": request.path}
        with tracer.start_as_current_span(
            name, context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
        ) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    return traced
