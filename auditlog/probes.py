"""`/healthz`, `/readyz` and `/metrics` of the ingest programs, built the same way for each: liveness is the process
answering, readiness is what the program's `unready_reason` says, metrics are one Prometheus registry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

# None when ready, else why not (sent in the 503 body: these listeners serve probes and Prometheus only).
UnreadyReason = Callable[[], Awaitable[str | None]]
# A kubelet probe gives up after its own timeout (1s by default); an answer still comes, and says why.
CHECK_TIMEOUT_S = 5.0
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _text(body: str, status: int = 200) -> web.Response:
    return web.Response(text=body, status=status, headers={"X-Content-Type-Options": "nosniff"})


async def healthz(_: web.Request) -> web.Response:
    return _text("ok\n")


def readyz(unready_reason: UnreadyReason, timeout_s: float = CHECK_TIMEOUT_S) -> Handler:
    """The /readyz handler: 200 `ok`, or 503 `not ready: <why>` (also when the check hangs or fails)."""

    async def handle(_: web.Request) -> web.Response:
        try:
            why = await asyncio.wait_for(unready_reason(), timeout_s)
        except TimeoutError:
            why = f"the readiness check did not answer within {timeout_s:g}s"
        except Exception as err:  # a failing check is a 503 that says so, never a 500 with a stack trace
            log.warning("readiness check failed", exc_info=True)
            why = f"the readiness check failed: {type(err).__name__}: {err}"
        return _text("ok\n") if why is None else _text(f"not ready: {why}\n", 503)

    return handle


def metrics(registry: CollectorRegistry = REGISTRY) -> Handler:
    """The /metrics handler: `registry` in Prometheus' text format."""

    async def handle(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handle


def add_probe_routes(
    app: web.Application, unready_reason: UnreadyReason, registry: CollectorRegistry = REGISTRY
) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(unready_reason))
    app.router.add_get("/metrics", metrics(registry))


def probe_app(unready_reason: UnreadyReason, registry: CollectorRegistry = REGISTRY) -> web.Application:
    """An application serving only the three probe paths, for a listener of its own."""
    app = web.Application()
    add_probe_routes(app, unready_reason, registry)
    return app
