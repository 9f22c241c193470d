"""The load generator against our real webhook receiver and a real nats-server: every valid event lands in the
stream once, every malformed one is dead-lettered, and the same traffic sent twice is stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from nats.aio.client import Client as NATS

from activity.loadgen.batches import TrafficPlan, items
from activity.loadgen.sender import Delivery, send
from activity.natsd import NatsServer
from auditlog.events import event_key
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


async def _stored_keys(nc: NATS, stream: str) -> list[str]:
    js = nc.jetstream()
    count = (await js.stream_info(stream)).state.messages
    keys = []
    for seq in range(1, count + 1):
        msg = await js.get_msg(stream, seq)
        keys.append((msg.headers or {}).get(MSG_ID_HEADER, ""))
    return keys


async def test_valid_events_stored_once_malformed_dead_lettered(nc: NATS, webhook: WebhookHandle) -> None:
    plan = TrafficPlan(events=601, seed=12, batch=50, malformed_ratio=0.05)
    delivery = Delivery(url=f"{webhook.url}/events", concurrency=3)
    summary = await send(plan, delivery)
    assert summary.ok and summary.events == 601 and summary.malformed > 0
    expected = [event_key(item) for item, kind in items(plan) if kind is None]
    assert sorted(await _stored_keys(nc, STREAM)) == sorted(expected)
    dead = await _stored_keys(nc, DEAD_LETTER_STREAM)
    assert len(dead) == summary.dead_lettered == summary.malformed  # the receiver's own count

    again = await send(plan, delivery)  # a replay: the same auditIDs, inside the duplicate window
    assert again.ok and again.events == 601
    assert len(await _stored_keys(nc, STREAM)) == 601
