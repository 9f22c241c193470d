"""`--listen`: liveness, readiness (NATS connected, the store answering, batches progressing) and Prometheus
metrics."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from auditlog.listener import DEFAULT_LIMITS, GuardedSite, ListenerLimits
from ingest.consumer.consumer import Consumer

CONSUMER_KEY = web.AppKey("consumer", Consumer)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    why = await request.app[CONSUMER_KEY].unready_reason()
    if why is None:
        return web.Response(text="ok\n")
    return web.Response(status=503, text=f"not ready: {why}\n")


async def _metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[CONSUMER_KEY].metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def probe_app(consumer: Consumer) -> web.Application:
    app = web.Application()
    app[CONSUMER_KEY] = consumer
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


async def start_probes(
    consumer: Consumer, host: str, port: int, limits: ListenerLimits = DEFAULT_LIMITS
) -> web.AppRunner:
    runner = web.AppRunner(probe_app(consumer), access_log=None)
    await runner.setup()
    await GuardedSite(runner, host, port, limits=limits).start()
    return runner
