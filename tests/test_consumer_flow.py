"""The consumer in-process, on a real nats-server and a real chdb store: what gets stored, filtered,
dead-lettered and acked."""

from __future__ import annotations

from collections import Counter

import orjson
from consumer_support import (
    CLUSTER,
    FAST,
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
    stored_keys,
    stored_rows,
)
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from activity.devtools.natsd import NatsServer
from auditlog.storage import Store
from ingest.deadletter import INSERT_REJECTED, NOT_AUDIT_EVENT, NOT_JSON, OVERSIZE
from ingest.jetstream import (
    DEAD_LETTER_STREAM,
    DURABLE,
    ORIGINAL_SIZE_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    REASON_HEADER,
    STREAM,
    connect,
    dead_letter_subject,
    events_subject,
)


async def test_response_complete_events_are_stored_once_and_the_rest_filtered_and_acked(
    nats_server: NatsServer, store: Store
) -> None:
    events = generated(400)  # 800 messages, 8+ batches of 100
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store) as consumer:
            await publish(nc, events)
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "messages_filtered_total", stage="RequestReceived") == 400
            assert sample(consumer, "messages_acked_total") == 800
        shown = await stored_keys(store)
        assert Counter(shown) == Counter(keys(events))  # every ResponseComplete once, nothing else
        info = await durable_info(nc)
        assert info.config.max_ack_pending == FAST.max_ack_pending
        assert info.num_redelivered == 0
    finally:
        await nc.close()


async def test_other_stages_can_be_chosen(nats_server: NatsServer, store: Store) -> None:
    events = generated(50)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, events)
        async with running(nc, store, stages=frozenset({"RequestReceived", "ResponseComplete"})):
            await eventually(lambda: drained(nc), what="every message acked")
        assert sorted(await stored_keys(store)) == sorted((e["auditID"], e["stage"]) for e in events)
    finally:
        await nc.close()


async def test_poison_is_dead_lettered_with_its_reason_acked_and_good_neighbours_stored(
    nats_server: NatsServer, store: Store
) -> None:
    good = [e for e in generated(60) if e["stage"] == "ResponseComplete"]
    pretty = good[0]
    # Python's fromisoformat accepts an ISO week date, ClickHouse cannot parse it: refused before the insert.
    week_date = dict(good[1], auditID="week-date", stageTimestamp="2026-W48-6T10:00:00Z")
    # A valid event that only the store refuses (a CHECK an operator added): found out by the insert.
    await store.run(lambda c: c.command(POISON_CHECK))
    refused = dict(good[1], auditID="poison-1")
    poison: list[tuple[bytes, str]] = [
        (b"{not json", NOT_JSON),
        (b"[1, 2, 3]", NOT_AUDIT_EVENT),
        (orjson.dumps({k: v for k, v in good[2].items() if k != "auditID"}), NOT_AUDIT_EVENT),
        (orjson.dumps({k: v for k, v in good[3].items() if k != "stageTimestamp"}), NOT_AUDIT_EVENT),
        (orjson.dumps(dict(good[4], huge="x" * 30_000)), OVERSIZE),
        (orjson.dumps(week_date), NOT_AUDIT_EVENT),
        (orjson.dumps(refused), INSERT_REJECTED),
    ]
    payloads = [orjson.dumps(pretty, option=orjson.OPT_INDENT_2)] + [orjson.dumps(e) for e in good[5:]]
    payloads[10:10] = [p for p, _ in poison]  # in the middle of a batch
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, payloads)
        async with running(nc, store, max_event_bytes=20_000, batch_events=200) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "store_errors_total", kind="data") >= 1
        expected = [(e["auditID"], e["stage"]) for e in [pretty, *good[5:]]]
        assert sorted(await stored_keys(store)) == sorted(expected)
        stored_pretty = await store.query_tsv(
            "SELECT event_json FROM events WHERE audit_id = {id:String}", {"id": pretty["auditID"]}
        )
        assert stored_pretty == [orjson.dumps(pretty)]  # one line, compact, same content

        letters = await dead_letters(nc)
        assert len(letters) == len(poison)
        for msg, (payload, reason) in zip(sorted(letters, key=lambda m: m.data), sorted(poison), strict=True):
            assert msg.headers is not None
            assert msg.headers[REASON_HEADER].startswith(reason + ": ")
            assert msg.headers[ORIGINAL_SUBJECT_HEADER] == events_subject(CLUSTER)
            assert msg.headers[ORIGINAL_SIZE_HEADER] == str(len(payload))
            assert msg.subject == dead_letter_subject("consumer", CLUSTER)
            assert msg.data == payload
        assert "missing" in " ".join(m.headers[REASON_HEADER] for m in letters if m.headers)
    finally:
        await nc.close()


async def test_redelivered_copies_are_shown_once(nats_server: NatsServer, store: Store) -> None:
    """The same events arriving twice (a redelivery after a crash between insert and ack) are stored twice
    and read once, on every page size."""
    events = generated(120)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, events)
        # Again, in another order and without Nats-Msg-Id (JetStream would drop them): what a redelivery stores.
        await publish(nc, [orjson.dumps(e) for e in events[::2] + events[1::2]])
        async with running(nc, store):
            await eventually(lambda: drained(nc), what="every message acked")
        assert await stored_rows(store) == 2 * 120
        for page_size in (1, 7, 50, 1000):
            shown = await stored_keys(store, page_size)
            assert len(shown) == len(set(shown)) == 120
            assert set(shown) == set(keys(events))
    finally:
        await nc.close()


async def test_replicas_sharing_the_durable_store_everything_once(nats_server: NatsServer, store: Store) -> None:
    events = generated(500)
    nc1 = await connect(nats_server.url, "replica-1")
    nc2 = await connect(nats_server.url, "replica-2")
    try:
        await events_stream(nc1)
        async with running(nc1, store) as first, running(nc2, store) as second:
            await publish(nc1, events)
            await eventually(lambda: drained(nc1), what="every message acked")
            pulled = [sample(c, "messages_pulled_total") for c in (first, second)]
        assert sum(pulled) == 1000  # each message went to one replica, and was acked there only
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        await nc1.close()
        await nc2.close()


async def test_an_existing_durable_is_updated_to_the_settings(nats_server: NatsServer, store: Store) -> None:
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store, max_ack_pending=500):
            await eventually(lambda: _config_is(nc, 500, FAST.ack_wait_s), what="the durable created")
        async with running(nc, store, max_ack_pending=700, ack_wait_s=12.0):
            await eventually(
                lambda: _config_is(nc, 700, 12.0),
                what="the durable updated",
            )
        info = await nc.jetstream().consumer_info(STREAM, DURABLE)
        assert info.config.filter_subject == "audit.k8s.>"
    finally:
        await nc.close()


async def _config_is(nc: NATS, max_ack_pending: int, ack_wait: float) -> bool:
    try:
        info = await durable_info(nc)
    except NotFoundError:
        return False
    return info.config.max_ack_pending == max_ack_pending and info.config.ack_wait == ack_wait


async def test_a_deleted_dead_letter_stream_is_recreated(nats_server: NatsServer, store: Store) -> None:
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store) as consumer:
            await eventually(lambda: _config_is(nc, FAST.max_ack_pending, FAST.ack_wait_s), what="the durable")
            await nc.jetstream().delete_stream(DEAD_LETTER_STREAM)
            await publish(nc, [b"not json at all"])
            await eventually(lambda: drained(nc), what="the poison acked")
            await eventually(
                lambda: sample(consumer, "messages_dead_lettered_total", reason=NOT_JSON) == 1,
                what="the dead letter counted",
            )
        assert [m.data for m in await dead_letters(nc)] == [b"not json at all"]
    finally:
        await nc.close()


async def test_batches_are_cut_by_bytes_and_an_event_bigger_than_a_batch_comes_alone(
    nats_server: NatsServer, store: Store
) -> None:
    events = [e for e in generated(200) if e["stage"] == "ResponseComplete"]
    giant = dict(events[0], auditID="giant", pad="x" * 50_000)  # over the whole batch budget
    payloads = [orjson.dumps(e) for e in events[1:]]
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, [*payloads[:50], orjson.dumps(giant), *payloads[50:]])
        async with running(nc, store, batch_events=1000, batch_bytes=20_000, max_event_bytes=10_000) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            flushed = sample(consumer, "batch_events_count")
            assert sample(consumer, "messages_dead_lettered_total", reason=OVERSIZE) == 1
        assert sorted(await stored_keys(store)) == sorted(keys(events[1:]))
        assert flushed >= sum(map(len, payloads)) / 20_000  # the byte budget, not the count, cut the batches
    finally:
        await nc.close()


async def test_a_deleted_durable_is_recreated_and_nothing_is_shown_twice(nats_server: NatsServer, store: Store) -> None:
    events = generated(200)
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        async with running(nc, store):
            await publish(nc, events[:200])
            await eventually(lambda: drained(nc), what="the first half acked")
            await nc.jetstream().delete_consumer(STREAM, DURABLE)
            await publish(nc, events[200:])
            await eventually(lambda: drained(nc), what="the recreated durable drained", within=60)
        # The new durable starts from the stream's beginning: the first half is stored again, and read once.
        assert Counter(await stored_keys(store)) == Counter(keys(events))
    finally:
        await nc.close()


async def test_rows_the_store_rejects_are_isolated_wherever_they_sit(nats_server: NatsServer, store: Store) -> None:
    good = [e for e in generated(150) if e["stage"] == "ResponseComplete"]

    await store.run(lambda c: c.command(POISON_CHECK))

    def rejected(n: int) -> dict[str, object]:
        return dict(good[0], auditID=f"poison-{n}")

    # First and last of the batch, two adjacent, one alone in the middle.
    bad_at = {0: rejected(1), 40: rejected(2), 41: rejected(3), 97: rejected(4), 155: rejected(5)}
    payloads = [orjson.dumps(e) for e in good]
    for index in sorted(bad_at):
        payloads.insert(index, orjson.dumps(bad_at[index]))
    nc = await connect(nats_server.url, "test")
    try:
        await events_stream(nc)
        await publish(nc, payloads)
        async with running(nc, store, batch_events=1000, batch_age_s=1.0) as consumer:
            await eventually(lambda: drained(nc), what="every message acked")
            assert sample(consumer, "messages_dead_lettered_total", reason=INSERT_REJECTED) == len(bad_at)
            assert sample(consumer, "batch_events_count") == 1  # all of it in one batch, split to isolate
        assert sorted(await stored_keys(store)) == sorted(keys(good))
        letters = await dead_letters(nc)
        assert sorted(orjson.loads(m.data)["auditID"] for m in letters) == sorted(e["auditID"] for e in bad_at.values())
        assert all(m.headers and m.headers[REASON_HEADER].startswith(INSERT_REJECTED + ": ") for m in letters)
    finally:
        await nc.close()
