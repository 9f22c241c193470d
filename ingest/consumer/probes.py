"""`--listen`: liveness, readiness (NATS connected, the store answering, batches progressing) and the consumer's
Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from auditlog import probes
from auditlog.listener import DEFAULT_LIMITS, GuardedSite, ListenerLimits
from ingest.consumer.consumer import Consumer


def probe_app(consumer: Consumer) -> web.Application:
    return probes.probe_app(consumer.unready_reason, consumer.metrics.registry)


async def start_probes(
    consumer: Consumer, host: str, port: int, limits: ListenerLimits = DEFAULT_LIMITS
) -> web.AppRunner:
    runner = web.AppRunner(probe_app(consumer), access_log=None)
    await runner.setup()
    await GuardedSite(runner, host, port, limits=limits).start()
    return runner
