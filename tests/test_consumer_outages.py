"""The consumer when things fail: the store erroring or missing, nats-server restarting. Nothing is lost,
nothing is shown twice, memory stays bounded, and held messages are not redelivered meanwhile."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

from consumer_support import (
    drained,
    durable_info,
    events_stream,
    eventually,
    generated,
    keys,
    publish,
    running,
    sample,
    stored_keys,
)

from activity.devtools.natsd import NatsServer
from auditlog.config import StoreConfig, parse_store_dsn
from auditlog.schema import migrate
from auditlog.storage import Store
from ingest.jetstream import connect


async def test_store_failing_for_a_while_backs_off_holds_one_batch_then_drains(
    nats_server: NatsServer, store: Store
) -> None:
    events = generated(300)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await store.run(lambda c: c.command("RENAME TABLE events TO events_away"))
        # ack_wait 3 s: the outage below lasts longer, so only the +WPI in-progress acks prevent redelivery.
        async with running(nc, store, ack_wait_s=3.0) as consumer:
            await publish(nc, events)
            await eventually(lambda: sample(consumer, "store_errors_total", kind="transient") >= 3, what="retries")
            assert sample(consumer, "backing_off") == 1
            assert sample(consumer, "events_inserted_total") == 0
            await asyncio.sleep(4.5)  # the outage outlasts ack_wait

            # Pulling stopped: at most the failing batch and the one filling behind it are held.
            info = await durable_info(nc)
            assert 0 < info.num_ack_pending <= 2 * consumer.settings.batch_events
            assert info.num_pending >= len(events) - 2 * consumer.settings.batch_events
            assert info.num_redelivered == 0
            # The gauges follow the durable's info (polled), so a dashboard shows the backlog growing.
            await eventually(
                lambda: (
                    sample(consumer, "ack_pending_messages") == info.num_ack_pending
                    and sample(consumer, "pending_messages") == info.num_pending
                ),
                what="the pending gauges",
            )
            assert sample(consumer, "messages_acked_total") == 0

            await store.run(lambda c: c.command("RENAME TABLE events_away TO events"))
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "backing_off") == 0
            assert sample(consumer, "messages_redelivered_total") == 0
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        await nc.close()


async def test_store_migrated_only_after_the_consumer_started(nats_server: NatsServer, tmp_path: Path) -> None:
    config: StoreConfig = parse_store_dsn(f"chdb://{tmp_path / 'late-store'}")
    events = generated(100)
    store = Store(config)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store) as consumer:
            await publish(nc, events)
            await eventually(lambda: sample(consumer, "store_errors_total", kind="transient") >= 2, what="retry")
            assert await consumer.unready_reason() is not None  # the database does not exist yet
            migrate(config, retention_days=0)
            await eventually(lambda: drained(nc), what="every message acked")
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        await nc.close()
        store.close()


async def test_nats_server_restart_mid_stream_loses_nothing(nats_server: NatsServer, store: Store) -> None:
    events = generated(600)
    first, second = events[:700], events[700:]
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store, ack_wait_s=3.0) as consumer:
            await publish(nc, first)
            await eventually(lambda: sample(consumer, "messages_acked_total") > 0, what="some messages acked")
            nats_server.kill()
            nats_server.start()
            await eventually(lambda: nc.is_connected, what="the test client back")
            await publish(nc, second)
            await eventually(lambda: drained(nc), what="every message acked", within=60)
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        await nc.close()
