"""The load generator against our real webhook receiver and a real nats-server (and, end to end, our consumer
and the embedded store): every valid event lands once, every malformed one is dead-lettered, and the same
traffic sent twice is stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from consumer_support import drained, running, stored_keys
from nats.aio.client import Client as NATS
from polling import eventually
from webhook_support import msg_ids, stored

from activity.devtools.loadgen.batches import TrafficPlan, items
from activity.devtools.loadgen.sender import Delivery, send
from activity.devtools.natsd import NatsServer
from auditlog.storage import Store
from ingest.jetstream import DEAD_LETTER_STREAM, MSG_ID_HEADER, STREAM, connect
from ingest.webhook import WebhookHandle, WebhookSettings, start_webhook


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NATS]:
    client = await connect(nats_server.url, "loadgen-test")
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def webhook(nc: NATS) -> AsyncIterator[WebhookHandle]:
    handle = await start_webhook(WebhookSettings(port=0, cluster="loadgen"), nc)
    try:
        yield handle
    finally:
        await handle.stop()


async def _msg_ids(nc: NATS, stream: str) -> list[str]:
    return [(msg.headers or {}).get(MSG_ID_HEADER, "") for msg in await stored(nc, stream)]


async def test_valid_events_stored_once_malformed_dead_lettered(nc: NATS, webhook: WebhookHandle) -> None:
    plan = TrafficPlan(events=601, seed=12, batch=50, malformed_ratio=0.05)
    delivery = Delivery(url=f"{webhook.url}/events", concurrency=3)
    summary = await send(plan, delivery)
    assert summary.ok and summary.events == 601 and summary.malformed > 0
    messages = await stored(nc, STREAM)
    sent, expected = msg_ids(messages)
    assert sent == expected
    valid = [(item["auditID"], item["stage"]) for item, kind in items(plan) if kind is None]
    assert sorted((e["auditID"], e["stage"]) for e in (orjson.loads(m.data) for m in messages)) == sorted(valid)
    dead = await _msg_ids(nc, DEAD_LETTER_STREAM)
    assert len(dead) == summary.dead_lettered == summary.malformed  # the receiver's own count

    again = await send(plan, delivery)  # a replay: the same auditIDs, inside the duplicate window
    assert again.ok and again.events == 601
    assert len(await _msg_ids(nc, STREAM)) == 601


async def test_exactly_the_response_complete_events_become_queryable_once(
    nc: NATS, webhook: WebhookHandle, store: Store
) -> None:
    plan = TrafficPlan(events=900, seed=21, batch=120, malformed_ratio=0.02)
    summary = await send(plan, Delivery(url=f"{webhook.url}/events"))
    assert summary.ok and summary.response_complete == 450
    async with running(nc, store):
        await eventually(lambda: drained(nc), what="the consumer to ack the whole stream")
    shown = await stored_keys(store)
    expected = {
        (item["auditID"], item["stage"])
        for item, kind in items(plan)
        if kind is None and item["stage"] == "ResponseComplete"
    }
    assert len(shown) == len(set(shown)) == 450
    assert set(shown) == expected
