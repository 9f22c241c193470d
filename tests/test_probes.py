"""`/healthz`, `/readyz` and `/metrics` as the webhook and the consumer serve them (auditlog.probes), over a real
aiohttp server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from auditlog import probes


@asynccontextmanager
async def serving(
    unready_reason: probes.UnreadyReason, registry: CollectorRegistry | None = None
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    client = TestClient(TestServer(probes.probe_app(unready_reason, registry or CollectorRegistry())))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _get(client: TestClient[web.Request, web.Application], path: str) -> tuple[int, str]:
    async with client.get(path) as response:
        return response.status, await response.text()


async def test_ready_says_ok_and_unready_says_why() -> None:
    why: list[str | None] = [None]

    async def unready_reason() -> str | None:
        return why[0]

    async with serving(unready_reason) as client:
        assert await _get(client, "/readyz") == (200, "ok\n")
        why[0] = "NATS is disconnected"
        assert await _get(client, "/readyz") == (503, "not ready: NATS is disconnected\n")
        assert await _get(client, "/healthz") == (200, "ok\n")  # alive all the same: no restart for an outage


async def test_a_failing_readiness_check_is_a_503_saying_so_not_a_500() -> None:
    async def broken() -> str | None:
        raise ConnectionResetError("the store hung up")

    async with serving(broken) as client:
        status, text = await _get(client, "/readyz")
    assert status == 503
    assert text == "not ready: the readiness check failed: ConnectionResetError: the store hung up\n"
    assert "Traceback" not in text


async def test_a_hanging_readiness_check_answers_503_at_its_bound_and_other_paths_are_served_meanwhile() -> None:
    release = asyncio.Event()

    async def hangs() -> str | None:
        await release.wait()
        return None

    app = web.Application()
    app.router.add_get("/readyz", probes.readyz(hangs, timeout_s=0.2))
    app.router.add_get("/healthz", probes.healthz)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        ready = asyncio.ensure_future(_get(client, "/readyz"))
        assert await _get(client, "/healthz") == (200, "ok\n")
        async with asyncio.timeout(30):  # generous: only "the bound was hit" matters
            status, text = await ready
        assert (status, text) == (503, "not ready: the readiness check did not answer within 0.2s\n")
    finally:
        release.set()
        await client.close()


async def test_metrics_expose_the_registry_given() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_things", "Things counted", ["kind"], registry=registry).labels("odd").inc(3)

    async def ready() -> str | None:
        return None

    async with serving(ready, registry) as client, client.get("/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
        text = await response.text()
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["probe_test_things_total"].labels == {"kind": "odd"}
    assert samples["probe_test_things_total"].value == 3
