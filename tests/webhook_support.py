"""Test helpers for the webhook receiver: run it on a real nats-server, post EventLists, read the streams back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from activity.devtools.natsd import NatsServer
from ingest.jetstream import MSG_ID_HEADER, connect
from ingest.msgid import event_msg_id
from ingest.webhook import WebhookHandle, WebhookSettings, start_webhook

JSON = {"Content-Type": "application/json"}
# A generous PubAck timeout: a busy 2-core machine must not turn a healthy NATS into a 503. Outage tests that
# wait for a timeout set their own.
TEST_SETTINGS = WebhookSettings(host="127.0.0.1", port=0, cluster="test-1", publish_timeout_s=10.0)


@dataclass
class Running:
    nc: NATS
    handle: WebhookHandle
    http: aiohttp.ClientSession

    @property
    def events_url(self) -> str:
        return self.handle.url + "/events"

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        async with self.http.post(self.events_url, data=body, headers=headers or JSON) as response:
            return response.status, orjson.loads(await response.read())

    async def post_items(self, items: list[Any]) -> tuple[int, Any]:
        return await self.post(event_list(items))


@asynccontextmanager
async def running_webhook(server: NatsServer, **overrides: Any) -> AsyncIterator[Running]:
    nc = await connect(server.url, "webhook-test")
    try:
        handle = await start_webhook(replace(TEST_SETTINGS, **overrides), nc)
        try:
            async with aiohttp.ClientSession() as http:
                yield Running(nc, handle, http)
        finally:
            await handle.stop()
    finally:
        await nc.close()


def event_list(items: list[Any]) -> bytes:
    """The EventList kube-apiserver would send (compact, as Go writes it); the standard encoder, to carry what
    orjson refuses (huge ints)."""
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": items}
    return json.dumps(body, separators=(",", ":")).encode()


async def stored(nc: NATS, stream: str) -> list[Msg]:
    """Every message the stream holds, in order, through an ephemeral consumer that needs no acks."""
    js = nc.jetstream()
    config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
    sub = await js.pull_subscribe("", stream=stream, config=config)
    try:
        want = (await sub.consumer_info()).num_pending or 0
        messages: list[Msg] = []
        while len(messages) < want:
            messages += await sub.fetch(min(want - len(messages), 1000), timeout=5)
        return messages
    finally:
        await sub.unsubscribe()


def msg_ids(messages: list[Msg]) -> tuple[list[str], list[str]]:
    """(the Nats-Msg-Id of each stored event, the id the webhook must have given its bytes), to compare."""
    return (
        [(m.headers or {}).get(MSG_ID_HEADER, "") for m in messages],
        [event_msg_id(m.data, orjson.loads(m.data)["stage"]) for m in messages],
    )


async def status_of(webhook: Running, path: str) -> int:
    async with webhook.http.get(webhook.handle.url + path) as response:
        return response.status


async def has_status(webhook: Running, path: str, status: int) -> bool:
    return await status_of(webhook, path) == status
