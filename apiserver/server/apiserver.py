"""Wiring: a completed config becomes the running server (new), its layers outermost first.

TLS → metrics → tracing → panic recovery → timeout → authentication/authorization → in-flight limit →
handlers (discovery, OpenAPI, health, and each registered resource's) → store. `start_apiserver` runs it inside
the caller's event loop, so `activity up` can host it beside the webhook and the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from aiohttp import web
from aiohttp.typedefs import Middleware
from clickhouse_connect.driver.client import Client
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Tracer

from apiserver.auth.delegated import DelegatedAuth, build_delegated_auth
from apiserver.machinery import health
from apiserver.machinery.discovery import add_routes as add_discovery_routes
from apiserver.machinery.logs import ACCESS_LOGGER, AccessLogger
from apiserver.machinery.metrics import ApiMetrics
from apiserver.machinery.middlewares import max_in_flight, recover, request_timeout
from apiserver.machinery.openapi import OpenApiHandlers
from apiserver.machinery.registration import InstallContext, Registration, group_version
from apiserver.machinery.tracing import middleware as tracing_middleware
from apiserver.machinery.tracing import tracer_provider
from apiserver.registry.resources import RESOURCES
from apiserver.server.options import ApiServerSettings, CompletedConfig
from auditlog.config import StoreConfig
from auditlog.listener import GuardedSite, ListenerLimits
from auditlog.storage import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's limit for a request body


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


def build_app(
    settings: ApiServerSettings,
    store: Store,
    probe_store: Store,
    auth: Middleware,
    metrics: ApiMetrics,
    tracer: Tracer,
    stopping: Callable[[], bool],
    resources: tuple[Registration, ...] = RESOURCES,
) -> web.Application:
    """`probe_store` answers the health checks only: the resources reach the store through `store`."""
    gv = group_version(resources)
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
    add_discovery_routes(app, gv)
    context = InstallContext(store, metrics, settings.resource_settings)
    installed = [registration.install(context) for registration in resources]
    OpenApiHandlers([i.api for i in installed]).add_routes(app)
    ping = health.Check("ping", health.always_ok)
    storage = health.storage_check(probe_store.ping)
    health.HealthEndpoint("livez", [ping]).add_routes(app)
    health.HealthEndpoint("readyz", [ping, storage, health.shutdown_check(stopping)]).add_routes(app)
    health.HealthEndpoint("healthz", [ping, storage]).add_routes(app)
    for i in installed:
        i.add_routes(app)
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
    return await new(settings.complete(), store_config)


async def new(config: CompletedConfig, store_config: StoreConfig) -> ApiServerHandle:
    """The server of a completed config, serving until `handle.stop()`."""
    settings, context = config.settings, config.serving_context
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
        store,
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
        group_version(RESOURCES).group_version,
        settings.bind_address,
        handle.port,
        store_config.describe(),
        f"http://{settings.bind_address}:{handle.metrics_port}/metrics" if handle.metrics_port is not None else "off",
    )
    return handle
