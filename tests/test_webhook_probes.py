"""/healthz, /readyz and /metrics of the webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from polling import eventually
from prometheus_client.parser import text_string_to_metric_families
from webhook_support import TEST_SETTINGS, Running, event_list, has_status, running_webhook, status_of

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer
from ingest.deadletter import NOT_AUDIT_EVENT, OVERSIZE, UNENCODABLE
from ingest.jetstream import connect
from ingest.webhook import start_webhook


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server) as running:
        yield running


async def _scrape(webhook: Running) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with webhook.http.get(webhook.handle.url + "/metrics") as response:
        assert response.status == 200
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("activity_webhook_")
    }


async def test_metrics_count_what_happened(webhook: Running) -> None:
    good = list(EventGenerator().events(3))  # 6 events
    batch = [*good, {"auditID": "x"}, 42]
    before = await _scrape(webhook)

    assert (await webhook.post_items(batch))[0] == 200
    assert (await webhook.post_items(batch))[1]["duplicates"] == 6
    assert (await webhook.post(b"{oops"))[0] == 400
    async with webhook.http.put(webhook.events_url, data=event_list(good)) as response:
        assert response.status == 405

    after = await _scrape(webhook)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("activity_webhook_events_received_total") == 16
    assert moved("activity_webhook_events_published_total") == 12
    assert moved("activity_webhook_events_duplicate_total") == 6
    assert moved("activity_webhook_events_dead_lettered_total", reason=NOT_AUDIT_EVENT) == 4
    assert moved("activity_webhook_rejected_requests_total", reason="not_json") == 1
    assert moved("activity_webhook_rejected_requests_total", reason="method") == 1
    assert moved("activity_webhook_requests_total", code="200") == 2
    assert moved("activity_webhook_requests_total", code="400") == 1
    assert moved("activity_webhook_requests_total", code="405") == 1
    assert moved("activity_webhook_request_duration_seconds_count") == 4
    assert moved("activity_webhook_publish_duration_seconds_count") == 2
    assert after[("activity_webhook_publish_in_flight", ())] == 0
    assert after[("activity_webhook_nats_connected", ())] == 1


async def test_every_dead_letter_reason_the_webhook_gives_is_exported_from_the_start(webhook: Running) -> None:
    scraped = await _scrape(webhook)
    for reason in (OVERSIZE, NOT_AUDIT_EVENT, UNENCODABLE):  # so that rate() sees the first one
        assert ("activity_webhook_events_dead_lettered_total", (("reason", reason),)) in scraped


async def test_readyz_follows_the_nats_connection_and_healthz_the_process(
    webhook: Running, nats_server: NatsServer
) -> None:
    assert await status_of(webhook, "/readyz") == 200
    nats_server.kill()
    await eventually(lambda: has_status(webhook, "/readyz", 503), "/readyz to turn 503")
    async with webhook.http.get(webhook.handle.url + "/readyz") as response:
        assert await response.text() == "not ready: not connected to NATS\n"  # as the consumer words it
    assert await status_of(webhook, "/healthz") == 200
    assert (await _scrape(webhook))[("activity_webhook_nats_connected", ())] == 0
    assert (await webhook.post_items(list(EventGenerator().events(1))))[0] == 503
    nats_server.start()
    await eventually(lambda: has_status(webhook, "/readyz", 200), "/readyz to turn 200 again")


async def test_a_taken_port_fails_the_start_and_leaves_the_running_receiver_alone(
    webhook: Running, nats_server: NatsServer
) -> None:
    port = int(webhook.handle.url.rsplit(":", 1)[1])
    with pytest.raises(OSError):
        async with running_webhook(nats_server, port=port):
            pass
    assert (await webhook.post_items(list(EventGenerator().events(1))))[0] == 200


async def test_stop_after_the_nats_connection_closed_still_stops_serving(nats_server: NatsServer) -> None:
    nc = await connect(nats_server.url, "closed-first")
    handle = await start_webhook(replace(TEST_SETTINGS, port=0), nc)
    await nc.close()  # an embedding process may close its connection first
    await handle.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(handle.url + "/healthz")
