"""No batch can stop ingestion: inserts stay within the store's partition limit, a row the store refuses is
dead-lettered alone while its neighbours are stored, a restart goes on where the last run stopped, and a consumer
that stops making progress says so on /readyz. Real webhook, nats-server and chdb throughout."""

from __future__ import annotations

import math
import signal
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson
from consumer_support import (
    CLUSTER,
    POISON_CHECK,
    dead_letters,
    drained,
    durable_info,
    events_stream,
    eventually,
    generated,
    keys,
    publish,
    running,
    sample,
    spawn_consumer,
    stored_keys,
)
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError
from webhook_support import running_webhook, stored

from activity.devtools.natsd import NatsServer, free_port
from auditlog.config import parse_store_dsn
from auditlog.storage import Store
from ingest.consumer.probes import start_probes
from ingest.deadletter import INSERT_REJECTED
from ingest.jetstream import ORIGINAL_SUBJECT_HEADER, REASON_HEADER, STREAM, connect, events_subject

# One batch holds everything each test publishes (published before the consumer starts), so the batch spans
# every day at once.
ONE_BATCH = {"batch_events": 2000, "batch_age_s": 1.0, "max_ack_pending": 4000}


def completes(count: int, seed: int = 1) -> list[dict[str, Any]]:
    events = [e for e in generated(count, seed) if e["stage"] == "ResponseComplete"]
    assert len(events) == count
    return events


def spread(events: Sequence[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """The events over `days` consecutive days, in order, as `activity import` of old logs or a hostile sender
    would post them in one EventList."""
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    return [
        dict(e, stageTimestamp=(start + timedelta(days=i % days, microseconds=i)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        for i, e in enumerate(events)
    ]


def poisoned(events: list[dict[str, Any]], at: Sequence[int]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(events with those at `at` renamed to poison, the poisoned ones): valid events the store's CHECK refuses."""
    out = list(events)
    for n, index in enumerate(at):
        out[index] = dict(out[index], auditID=f"poison-{n}-{out[index]['auditID']}")
    return out, [out[i] for i in at]


async def post_all(server: NatsServer, events: list[dict[str, Any]]) -> None:
    async with running_webhook(server, cluster=CLUSTER) as webhook:
        status, answer = await webhook.post_items(events)
        assert status == 200, answer


async def test_an_event_list_over_150_days_is_stored_in_inserts_of_at_most_100_days(
    nats_server: NatsServer, store: Store
) -> None:
    events = spread(completes(300), days=150)
    nc = await connect(nats_server.url, "test")
    try:
        await post_all(nats_server, events)
        async with running(nc, store, **ONE_BATCH) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "batch_events_count") == 1
            # Grouped before the insert: nothing was refused, two inserts of whole days.
            assert sample(consumer, "store_errors_total", kind="too_wide") == 0
            assert sample(consumer, "store_errors_total", kind="transient") == 0
            assert sample(consumer, "insert_duration_seconds_count") == 2
        assert sorted(await stored_keys(store)) == sorted(keys(events))
        days = await store.query_tsv("SELECT uniqExact(toYYYYMMDD(timestamp)) FROM events", {})
        assert days == [b"150"]
        assert await dead_letters(nc) == []
    finally:
        await nc.close()


async def test_a_90_day_import_is_one_insert(nats_server: NatsServer, store: Store) -> None:
    events = spread(completes(400), days=90)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, events)
        async with running(nc, store, **ONE_BATCH) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "insert_duration_seconds_count") == 1
        assert sorted(await stored_keys(store)) == sorted(keys(events))
    finally:
        await nc.close()


async def test_a_store_with_a_lower_partition_limit_gets_narrower_inserts_and_nothing_is_dead_lettered(
    nats_server: NatsServer, store: Store
) -> None:
    events = spread(completes(300), days=300)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, events)
        # The consumer believes in 1000 partitions per insert; ClickHouse refuses anything over 100 (code 252).
        async with running(nc, store, max_partitions_per_insert=1000, **ONE_BATCH) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            refused = sample(consumer, "store_errors_total", kind="too_wide")
            assert refused >= 1  # the refusal came, and was answered by splitting the days
            assert sample(consumer, "insert_duration_seconds_count") >= math.ceil(300 / 100)
            assert sample(consumer, "store_errors_total", kind="transient") == 0
            assert sample(consumer, "messages_dead_lettered_total", reason=INSERT_REJECTED) == 0
        assert sorted(await stored_keys(store)) == sorted(keys(events))
        assert await dead_letters(nc) == []
    finally:
        await nc.close()


async def test_a_poison_event_is_dead_lettered_with_its_reason_the_rest_and_later_events_stored(
    nats_server: NatsServer, store: Store
) -> None:
    await store.run(lambda c: c.command(POISON_CHECK))
    first, poison = poisoned(spread(completes(300), days=150), at=[0, 77, 78, 151, 299])
    later, later_poison = poisoned(spread(completes(60, seed=2), days=3), at=[30])
    nc = await connect(nats_server.url, "test")
    try:
        await post_all(nats_server, first)
        async with running(nc, store, **ONE_BATCH) as consumer:
            await eventually(lambda: drained(nc), what="the poisoned batch acked")
            await post_all(nats_server, later)
            await eventually(lambda: drained(nc), what="the events after it acked")
            assert sample(consumer, "messages_dead_lettered_total", reason=INSERT_REJECTED) == 6
            assert sample(consumer, "store_errors_total", kind="transient") == 0
        good = [e for e in first + later if not e["auditID"].startswith("poison")]
        assert sorted(await stored_keys(store)) == sorted(keys(good))
        letters = await dead_letters(nc)
        assert sorted(m.data for m in letters) == sorted(
            await _published_bytes(nc, {e["auditID"] for e in poison + later_poison})
        )
        for msg in letters:
            assert msg.headers is not None
            assert msg.headers[REASON_HEADER].startswith(INSERT_REJECTED + ": ")
            assert "no_poison" in msg.headers[REASON_HEADER]  # the store's own words: what to fix
            assert msg.headers[ORIGINAL_SUBJECT_HEADER] == events_subject(CLUSTER)
    finally:
        await nc.close()


async def _published_bytes(nc: NATS, audit_ids: set[str]) -> list[bytes]:
    return [m.data for m in await stored(nc, STREAM) if orjson.loads(m.data)["auditID"] in audit_ids]


async def _status(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def test_readiness_is_false_while_no_batch_makes_progress_and_true_again_after(
    nats_server: NatsServer, store: Store
) -> None:
    events = completes(50)
    nc = await connect(nats_server.url, "test")
    port = free_port()
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        await events_stream(nc)
        # The store answers every ping but refuses every insert (its table is gone): an outage by its error, so
        # retried; only the lack of progress shows.
        await store.run(lambda c: c.command("RENAME TABLE events TO events_away"))
        async with running(nc, store, stall_after_s=1.0) as consumer, aiohttp.ClientSession() as http:
            runner = await start_probes(consumer, "127.0.0.1", port)
            try:
                assert (await _status(http, url))[0] == 200  # nothing to do is not stuck
                await publish(nc, events)
                await eventually(lambda: sample(consumer, "store_errors_total", kind="transient") >= 1, what="retry")
                assert await store.ping()

                async def unready() -> bool:
                    status, text = await _status(http, url)
                    return status == 503 and "no batch stored" in text

                await eventually(unready, what="/readyz to fail while the batch makes no progress")
                await store.run(lambda c: c.command("RENAME TABLE events_away TO events"))
                await eventually(lambda: drained(nc), what="every message acked")
                assert (await _status(http, url))[0] == 200
            finally:
                await runner.cleanup()
        assert sorted(await stored_keys(store)) == sorted(keys(events))
    finally:
        await nc.close()


async def _pulled(nc: NATS) -> bool:
    try:
        info = await durable_info(nc)
    except NotFoundError:
        return False
    return (info.num_pending or 0) == 0  # every message delivered: held, or already acked


async def test_a_restart_mid_batch_redelivers_it_and_it_goes_through(nats_server: NatsServer, store_dsn: str) -> None:
    setup = Store(parse_store_dsn(store_dsn))
    try:
        await setup.run(lambda c: c.command(POISON_CHECK))
    finally:
        setup.close()  # the consumer processes own the store directory from here
    events, poison = poisoned(spread(completes(300), days=150), at=[5, 200])
    flags = ["--batch-events", "2000", "--batch-age", "1s", "--max-ack-pending", "4000", "--ack-wait", "2s"]
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, events)
        first = spawn_consumer(nats_server.url, store_dsn, *flags)
        try:
            await eventually(lambda: _pulled(nc), what="the batch pulled")
        finally:
            first.send_signal(signal.SIGKILL)  # wherever it is: holding the batch, or done with it
            first.wait()
        second = spawn_consumer(nats_server.url, store_dsn, *flags)
        try:
            await eventually(lambda: drained(nc), what="the redelivered batch acked", within=60)
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        letters = await dead_letters(nc)
        # Once each: a dead letter sent again after the kill has the same Nats-Msg-Id (its stream sequence).
        assert sorted(m.data for m in letters) == sorted(await _published_bytes(nc, {e["auditID"] for e in poison}))
    finally:
        await nc.close()
    store = Store(parse_store_dsn(store_dsn))
    try:
        good = [e for e in events if not e["auditID"].startswith("poison")]
        assert sorted(await stored_keys(store)) == sorted(keys(good))  # each once, whatever was redelivered
    finally:
        store.close()
