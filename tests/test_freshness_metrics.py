"""The freshness SLIs: event age at insert in the consumer (stageTimestamp to committed in the store) and EventList
receive to last PubAck in the webhook, on a real nats-server and the real store."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from consumer_support import drained, events_stream, generated, publish, running, stored_keys
from hypothesis import given, settings
from hypothesis import strategies as st
from polling import eventually
from prometheus_client import REGISTRY, CollectorRegistry, Histogram
from webhook_support import running_webhook

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import NatsServer
from auditlog.storage import Store
from ingest.consumer.freshness import AGE_BUCKETS, AgeHistogram, ages, stage_time
from ingest.jetstream import connect

STAMP = "2026-11-28T09:00:00.250000Z"
WHEN = datetime(2026, 11, 28, 9, 0, 0, 250000, tzinfo=UTC).timestamp()


def _event(**fields: Any) -> bytes:
    event = {"auditID": "a", "stage": "ResponseComplete", "stageTimestamp": STAMP, **fields}
    return orjson.dumps(event)


def test_only_the_top_level_stage_timestamp_is_read() -> None:
    decoy = "1999-01-01T00:00:00Z"
    nested = {"spec": {"stageTimestamp": decoy}, "stageTimestamp": decoy}
    assert stage_time(_event(requestObject=nested, responseObject=nested)) == WHEN
    assert stage_time(_event(annotations={"stageTimestamp": decoy})) == WHEN
    # a decoy before the real field, and a string that only looks like the key
    before = b'{"requestObject":{"stageTimestamp":"' + decoy.encode() + b'"},' + _event()[1:]
    assert stage_time(before) == WHEN
    assert stage_time(_event(userAgent='\\"stageTimestamp\\":\\"1999-01-01T00:00:00Z')) == WHEN


def test_a_wide_integer_elsewhere_does_not_hide_the_stamp() -> None:
    wide = b'{"requestObject":{"n":123456789012345678901234567890},' + _event()[1:]
    assert stage_time(wide) == WHEN


def test_no_usable_stamp_is_no_observation() -> None:
    for payload in (b"not json", b"[]", orjson.dumps({"stage": "x"}), _event(stageTimestamp="yesterday")):
        assert stage_time(payload) is None
    assert ages([b"not json", _event()], now=WHEN + 3) == [3.0]


def test_a_stamp_ahead_of_our_clock_counts_as_age_zero() -> None:
    assert ages([_event()], now=WHEN - 5) == [0.0]


@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1)), st.integers(-14 * 60, 14 * 60))
def test_any_rfc3339_offset_reads_as_the_same_instant(moment: datetime, offset_min: int) -> None:
    stamped = moment.replace(tzinfo=timezone(timedelta(minutes=offset_min)))
    text = stamped.isoformat(timespec="microseconds")
    assert stage_time(_event(stageTimestamp=text)) == stamped.timestamp()


def _buckets(registry: CollectorRegistry, name: str) -> dict[str, float]:
    return {
        s.labels.get("le", s.name): s.value
        for m in registry.collect()
        for s in m.samples
        if s.name in (name + "_bucket", name + "_count", name + "_sum")
    }


@settings(max_examples=200)
@given(st.lists(st.lists(st.floats(0, 1e5) | st.sampled_from(AGE_BUCKETS), max_size=30), max_size=5))
def test_the_batch_histogram_exposes_what_prometheus_client_would(batches: list[list[float]]) -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    histogram = AgeHistogram("age_seconds", "doc", AGE_BUCKETS, ours)
    reference = Histogram("age_seconds", "doc", buckets=AGE_BUCKETS, registry=theirs)
    for batch in batches:
        histogram.observe_all(batch)
        for value in batch:
            reference.observe(value)
    got, want = _buckets(ours, "age_seconds"), _buckets(theirs, "age_seconds")
    assert math.isclose(got.pop("age_seconds_sum"), want.pop("age_seconds_sum"), rel_tol=1e-9, abs_tol=1e-9)
    assert got == want
    assert "10.0" in got  # the bound the freshness SLO reads


async def test_the_consumer_observes_each_stored_event_at_its_age(nats_server: NatsServer, store: Store) -> None:
    now = datetime.now(UTC)
    old = list(EventGenerator(GeneratorSettings(seed=3, start=now - timedelta(hours=2))).events(50))
    recent = list(EventGenerator(GeneratorSettings(seed=7, start=now)).events(20))
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store) as consumer:
            await publish(nc, [*old, *recent])
            await eventually(lambda: drained(nc), what="every message acked")
            exposed = _buckets(consumer.metrics.registry, "activity_consumer_stored_event_age_seconds")
        stored = len(await stored_keys(store))
    finally:
        await nc.close()
    assert stored == 70  # the ResponseComplete half of 50 + 20 requests
    assert exposed["activity_consumer_stored_event_age_seconds_count"] == stored  # one observation per stored event
    assert exposed["+Inf"] == stored
    # the old ones are two hours old; the recent ones are stored well within 5 minutes (bound generously: the
    # machine is shared), and none of them is counted older than it is
    assert exposed["300.0"] == exposed["3600.0"] == 20
    assert exposed["activity_consumer_stored_event_age_seconds_sum"] > 50 * 7000


async def test_the_webhook_times_accepted_batches_only(nats_server: NatsServer) -> None:
    name = "activity_webhook_receive_to_ack_seconds_count"

    def count() -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    async with running_webhook(nats_server) as webhook:
        await events_stream(webhook.nc)
        before = count()
        assert (await webhook.post_items(generated(3)))[0] == 200
        assert (await webhook.post_items([*generated(2, seed=5), 42]))[0] == 200  # a bad item is dead-lettered
        assert (await webhook.post(b"{oops"))[0] == 400
        assert count() - before == 2
