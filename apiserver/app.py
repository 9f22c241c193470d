"""Wiring: the layers of the API server, outermost first, and the listeners that serve them.

TLS → metrics → tracing → panic recovery → timeout → authentication/authorization → in-flight limit →
handlers (discovery, OpenAPI, health, AuditLogQuery create) → query service → store. `start_apiserver` runs it
inside the caller's event loop, so `activity up` can host it beside the webhook and the consumer;
`activity apiserver` is a thin command around it.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from clickhouse_connect.driver.client import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from apiserver.auditlogquery import definitions
from apiserver.auditlogquery.resource import AuditLogQueryResource
from apiserver.auditlogquery.service import QueryService
from apiserver.auditlogquery.types import QuerySettings
from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.delegated import DelegatedAuth, build_delegated_auth
from apiserver.http import health
from apiserver.http.certs import self_signed_serving
from apiserver.http.discovery import add_routes as add_discovery_routes
from apiserver.http.logs import ACCESS_LOGGER, AccessLogger
from apiserver.http.metrics import ApiMetrics
from apiserver.http.middlewares import max_in_flight, recover, request_timeout
from apiserver.http.openapi import CreateOnlyApi, OpenApiHandlers
from apiserver.http.tracing import TracingConfiguration, tracer_provider
from apiserver.http.tracing import middleware as tracing_middleware
from auditlog.config import StoreConfig
from auditlog.listener import GuardedSite, ListenerLimits
from auditlog.storage import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_REQUEST_TIMEOUT_SECONDS = 60.0
# kube-apiserver's defaults for --max-requests-inflight and --max-mutating-requests-inflight
DEFAULT_MAX_REQUESTS_INFLIGHT = 400
DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT = 200
DEFAULT_STORE_WORKERS = 8
SELF_SIGNED_HOSTS = ("localhost", "127.0.0.1", "::1")
MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's limit for a request body


@dataclass(frozen=True)
class ApiServerSettings:
    query: QuerySettings
    auth: AuthSettings = field(default_factory=AuthSettings)
    bind_address: str = "0.0.0.0"
    secure_port: int = 6443  # 0: any free port (see ApiServerHandle.port)
    tls_cert_file: Path | None = None  # both None: a self-signed pair is generated
    tls_private_key_file: Path | None = None
    metrics_port: int | None = None  # None: no metrics listener; 0: any free port
    tracing: TracingConfiguration | None = None
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_requests_inflight: int = DEFAULT_MAX_REQUESTS_INFLIGHT  # 0: unlimited
    max_mutating_requests_inflight: int = DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT
    store_workers: int = DEFAULT_STORE_WORKERS  # queries that may run in the store at once; more wait for one
    # Extra hosts for a generated serving certificate (the Service DNS name, a node IP, ...).
    self_signed_hosts: tuple[str, ...] = SELF_SIGNED_HOSTS
    listener: ListenerLimits = field(default_factory=ListenerLimits)  # each listener: connection cap, timeouts


class MeasuredStore(Store):
    """The store as the API server uses it: every call's latency lands in the storage histogram."""

    def __init__(self, config: StoreConfig, metrics: ApiMetrics, workers: int) -> None:
        super().__init__(config, workers=workers)
        self._histogram = metrics.storage_duration

    async def run(self, fn: Callable[[Client], T]) -> T:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await super().run(fn)
            outcome = "ok"
            return result
        finally:
            self._histogram.labels(outcome).observe(time.perf_counter() - started)


@dataclass
class ApiServerHandle:
    port: int
    metrics_port: int | None
    store: Store
    probe_store: Store  # readiness's own lane (see start_apiserver)
    auth: DelegatedAuth
    tracer_provider: TracerProvider
    _runners: list[web.AppRunner] = field(default_factory=list)
    stopping: bool = False

    async def stop(self, shutdown_delay_seconds: float = 0.0) -> None:
        """Report not-ready (and keep serving for `shutdown_delay_seconds`, so load balancers and the aggregator
        move away first), stop accepting, finish in-flight requests, then release the store and auth clients."""
        self.stopping = True
        await asyncio.sleep(shutdown_delay_seconds)
        for runner in self._runners:
            await runner.cleanup()
        await self.auth.close()
        self.store.close()
        self.probe_store.close()
        self.tracer_provider.shutdown()


def _serving_context(settings: ApiServerSettings) -> ssl.SSLContext:
    # A bare server context: client certificates are trusted only through the CAs the auth layer loads,
    # never the system's public roots.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # aiohttp speaks HTTP/1.1 only: selecting it in ALPN settles Go clients (the aggregator) that also offer h2
    context.set_alpn_protocols(["http/1.1"])
    if settings.tls_cert_file and settings.tls_private_key_file:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_private_key_file)
        return context
    if settings.tls_cert_file or settings.tls_private_key_file:
        raise ValueError("give both --tls-cert-file and --tls-private-key-file, or neither (self-signed)")
    pair = self_signed_serving(settings.self_signed_hosts)
    log.warning(
        "no --tls-cert-file/--tls-private-key-file: serving a generated self-signed certificate for %s; clients "
        "must skip verification or pin it (kube-aggregator needs insecureSkipTLSVerify or the APIService caBundle)",
        ", ".join(settings.self_signed_hosts),
    )
    # ssl loads certificate chains only from files: the pair lives in temporary files just long enough to load.
    with tempfile.NamedTemporaryFile() as cert, tempfile.NamedTemporaryFile() as key:
        cert.write(pair.cert_pem)
        key.write(pair.key_pem)
        cert.flush()
        key.flush()
        context.load_cert_chain(cert.name, key.name)
    return context


def build_app(
    settings: ApiServerSettings,
    service: QueryService,
    store: Store,
    auth: Middleware,
    metrics: ApiMetrics,
    tracer: Tracer,
    stopping: Callable[[], bool],
) -> web.Application:
    """`store` answers the health checks only: queries reach the store through `service`."""
    gv = definitions.GROUP_VERSION
    app = web.Application(
        middlewares=[
            metrics.middleware(gv),
            tracing_middleware(tracer),
            recover,
            request_timeout(settings.request_timeout_seconds),
            auth,
            max_in_flight(settings.max_requests_inflight, settings.max_mutating_requests_inflight),
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    schemas = partial(
        definitions.schemas, max_page_size=settings.query.max_page_size, max_window=settings.query.max_window
    )
    add_discovery_routes(app, gv)
    api = CreateOnlyApi(
        gv=gv,
        resource=definitions.RESOURCE,
        root_schema=definitions.AUDIT_LOG_QUERY,
        schemas_for=schemas,
        title="Activity: Kubernetes audit log queries",
    )
    OpenApiHandlers(api).add_routes(app)
    ping = health.Check("ping", health.always_ok)
    storage = health.storage_check(store.ping)
    health.HealthEndpoint("livez", [ping]).add_routes(app)
    health.HealthEndpoint("readyz", [ping, storage, health.shutdown_check(stopping)]).add_routes(app)
    health.HealthEndpoint("healthz", [ping, storage]).add_routes(app)
    AuditLogQueryResource(service, schemas(lambda name: name), metrics).add_routes(app)
    return app


async def _listen(
    app: web.Application, host: str, port: int, context: ssl.SSLContext | None, limits: ListenerLimits
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(
        app, access_log_class=AccessLogger, access_log=logging.getLogger(ACCESS_LOGGER), handle_signals=False
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, limits=limits, ssl_context=context, backlog=1024)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def start_apiserver(settings: ApiServerSettings, store_config: StoreConfig) -> ApiServerHandle:
    """Serve in the running event loop until `handle.stop()`. The API server opens its own store client (with
    its own worker threads, so ingest inserts in the same process never queue behind queries)."""
    context = _serving_context(settings)
    auth = await build_delegated_auth(settings.auth)
    auth.configure_server_tls(context)
    metrics = ApiMetrics()
    store = MeasuredStore(store_config, metrics, settings.store_workers)
    # Readiness pings from its own client and thread: with every query worker busy, a ping queued behind them
    # made a busy but healthy server report unready (and Kubernetes pull it from its Service). Its own lane
    # fails only when the store itself does not answer.
    probe_store = Store(store_config, workers=1)
    provider = tracer_provider(settings.tracing)
    handle = ApiServerHandle(
        port=0, metrics_port=None, store=store, probe_store=probe_store, auth=auth, tracer_provider=provider
    )
    app = build_app(
        settings,
        QueryService(store, settings.query),
        probe_store,
        auth.middleware(),
        metrics,
        provider.get_tracer(__name__),
        lambda: handle.stopping,
    )
    try:
        runner, handle.port = await _listen(
            app, settings.bind_address, settings.secure_port, context, settings.listener
        )
        handle._runners.append(runner)
        if settings.metrics_port is not None:
            runner, handle.metrics_port = await _listen(
                metrics.app(), settings.bind_address, settings.metrics_port, None, settings.listener
            )
            handle._runners.append(runner)
    except BaseException:
        await handle.stop()
        raise
    log.info(
        "serving %s on https://%s:%d from %s (metrics: %s)",
        definitions.GROUP_VERSION.group_version,
        settings.bind_address,
        handle.port,
        store_config.describe(),
        f"http://{settings.bind_address}:{handle.metrics_port}/metrics" if handle.metrics_port is not None else "off",
    )
    return handle
