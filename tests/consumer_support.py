"""Test helpers for the consumer: publish straight to JetStream, run the consumer in-process or as a real
`activity consume` subprocess, and read back what is stored (through the read helper) and dead-lettered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import nats.errors
import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError
from polling import eventually  # noqa: F401 - the consumer tests wait with it
from webhook_support import stored

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.reading import PageQuery, read_page
from auditlog.storage import Store
from ingest.consumer.consumer import Consumer
from ingest.consumer.settings import ConsumerSettings
from ingest.jetstream import (
    DEAD_LETTER_STREAM,
    DURABLE,
    MSG_ID_HEADER,
    STREAM,
    StreamSettings,
    ensure_stream,
    events_subject,
)
from ingest.msgid import event_msg_id

CLUSTER = "test-1"
# Small batches and short waits so each scenario crosses several batches within seconds.
FAST = ConsumerSettings(
    batch_events=100,
    batch_age_s=0.2,
    max_ack_pending=1000,
    backoff_initial_s=0.05,
    backoff_max_s=0.5,
    info_interval_s=0.3,
    shutdown_grace_s=5.0,
)
# A CHECK the store enforces at insert: valid audit events whose auditID starts with "poison" are refused by the
# store itself (ClickHouse code 469), as no check of ours could foresee.
POISON_CHECK = "ALTER TABLE events ADD CONSTRAINT IF NOT EXISTS no_poison CHECK NOT startsWith(audit_id, 'poison')"
FAST_FLAGS = ["--batch-events", "100", "--batch-age", "200ms", "--max-ack-pending", "1000", "--backoff-max", "500ms"]


def generated(requests: int, seed: int = 1) -> list[dict[str, Any]]:
    """2 x `requests` events: each request's RequestReceived and ResponseComplete."""
    return list(EventGenerator(GeneratorSettings(seed=seed)).events(requests))


def keys(events: Sequence[dict[str, Any]], stage: str = "ResponseComplete") -> list[tuple[str, str]]:
    return [(e["auditID"], e["stage"]) for e in events if e["stage"] == stage]


async def events_stream(nc: NATS) -> None:
    await ensure_stream(nc.jetstream(), StreamSettings())


def _message(payload: bytes | dict[str, Any]) -> tuple[bytes, dict[str, str] | None]:
    if not isinstance(payload, dict):
        return payload, None
    body = orjson.dumps(payload)
    return body, {MSG_ID_HEADER: event_msg_id(body, payload["stage"])}


async def publish(nc: NATS, payloads: Sequence[bytes | dict[str, Any]], cluster: str = CLUSTER) -> None:
    """Publish to the events stream and wait for every PubAck (a durable write), 500 in flight. Events carry
    Nats-Msg-Id like the webhook sends them, so a chunk re-sent after a NATS restart is stored once."""
    js = nc.jetstream()
    messages = [_message(p) for p in payloads]
    for start in range(0, len(messages), 500):
        chunk = messages[start : start + 500]
        for attempt in range(20):
            try:
                await asyncio.gather(*(js.publish(events_subject(cluster), d, headers=h) for d, h in chunk))
                break
            except nats.errors.Error:
                if attempt == 19:
                    raise
                await asyncio.sleep(0.5)  # JetStream still recovering after a restart


async def durable_info(nc: NATS) -> ConsumerInfo:
    return await nc.jetstream().consumer_info(STREAM, DURABLE)


async def drained(nc: NATS) -> bool:
    """Everything in the stream was delivered to the durable and acked."""
    try:
        info = await durable_info(nc)
    except NotFoundError:
        return False  # the consumer has not created it yet
    return info.num_pending == 0 and info.num_ack_pending == 0


@asynccontextmanager
async def running(
    nc: NATS, store: Store, settings: ConsumerSettings = FAST, **overrides: Any
) -> AsyncIterator[Consumer]:
    consumer = Consumer(replace(settings, **overrides), nc, store)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        await task


def sample(consumer: Consumer, name: str, **labels: str) -> float:
    """The current value of the consumer's metric `activity_consumer_<name>`."""
    value = consumer.metrics.registry.get_sample_value(f"activity_consumer_{name}", labels)
    assert value is not None, f"no sample activity_consumer_{name} {labels}"
    return float(value)


async def stored_keys(store: Store, page_size: int = 97) -> list[tuple[str, str]]:
    """Every (auditID, stage) the read helper shows, page after page, in the order it shows them."""
    query = PageQuery(start_us=0, end_us=2**62, limit=page_size)
    shown: list[tuple[str, str]] = []
    while True:
        page = await read_page(store, query)
        shown += [(e["auditID"], e["stage"]) for e in map(orjson.loads, page.events)]
        if page.next_after is None:
            return shown
        query = replace(query, after=page.next_after)


async def stored_rows(store: Store) -> int:
    """Physical rows, duplicates included."""
    return int((await store.query_tsv("SELECT count() FROM events", {}))[0])


async def dead_letters(nc: NATS) -> list[Msg]:
    return await stored(nc, DEAD_LETTER_STREAM)


def spawn_consumer(nats_url: str, store_dsn: str, *flags: str) -> subprocess.Popen[bytes]:
    """`activity consume` as its own process (its own chdb engine); stderr is kept for failure messages."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "activity.cli", "consume", "--nats-url", nats_url, "--store", store_dsn, *flags],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
