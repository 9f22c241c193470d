"""Redaction where it happens: the webhook on a real nats-server publishes no credential (events, dead letters,
either of its parsing paths), counts what it redacted, publishes the rest as sent; and through the consumer into
the embedded ClickHouse store nothing of them is readable either."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from consumer_support import drained, eventually, running
from prometheus_client import REGISTRY
from redaction_support import KEY, audit_event, b64, cases, event_key, leaks, markers_at, secret
from webhook_support import Running, event_list, running_webhook, stored

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import NatsServer
from auditlog.storage import Store
from ingest.jetstream import DEAD_LETTER_STREAM, STREAM
from ingest.redaction import RedactionSettings

CASES = list(cases())
ALL_CREDENTIALS = [c for case in CASES for c in case.credentials]
STAGES = frozenset({"RequestReceived", "ResponseComplete"})


def harmless(requests: int = 30) -> list[dict[str, Any]]:
    return list(EventGenerator(GeneratorSettings(seed=11)).events(requests))


def as_sent(items: list[Any]) -> list[bytes]:
    """Each item's bytes inside `event_list(items)`: what a byte-for-byte publish must carry."""
    return [json.dumps(item, separators=(",", ":")).encode() for item in items]


def redacted_count(resource: str) -> float:
    return REGISTRY.get_sample_value("activity_webhook_events_redacted_total", {"resource": resource}) or 0.0


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server, redaction=RedactionSettings(key=KEY)) as running_one:
        yield running_one


async def test_the_webhook_publishes_no_credential_and_everything_else_as_sent(webhook: Running) -> None:
    plain = harmless()
    items = [e for pair in zip(CASES, plain, strict=False) for e in (pair[0].event, pair[1])] + plain[len(CASES) :]
    counts = {c.resource: redacted_count(c.resource) for c in CASES}
    status, summary = await webhook.post_items(items)
    assert (status, summary["accepted"]) == (200, len(items))

    published = {event_key(orjson.loads(m.data)): m.data for m in await stored(webhook.nc, STREAM)}
    for case in CASES:
        data = published[event_key(case.event)]
        assert leaks(data, case.credentials) == [], case.name
        assert markers_at(orjson.loads(data)), case.name
    for event, sent in zip(plain, as_sent(plain), strict=True):
        assert published[event_key(event)] == sent, "published byte for byte"
    for resource, before in counts.items():
        assert redacted_count(resource) - before == sum(1 for c in CASES if c.resource == resource)


async def test_dead_letters_hold_no_credential_either(webhook: Running) -> None:
    bad = [dict(case.event, stageTimestamp="yesterday") for case in CASES]
    status, summary = await webhook.post_items([*bad, *harmless(5)])
    assert (status, summary["deadLettered"]) == (200, len(CASES))
    letters = await stored(webhook.nc, DEAD_LETTER_STREAM)
    assert len(letters) == len(CASES)
    for letter in letters:
        assert leaks(letter.data, ALL_CREDENTIALS) == []


async def test_a_batch_on_the_full_parsing_path_is_redacted_too(webhook: Running) -> None:
    # An integer beyond 64 bits sends the whole body past the fast path (decoding.plain_items) to the exact parser.
    odd = audit_event("get", "configmaps", response={"kind": "ConfigMap", "data": {}, "n": 2**70})
    items = [odd, *(case.event for case in CASES)]
    status, summary = await webhook.post(event_list(items))
    assert (status, summary["accepted"]) == (200, len(items))
    for message in await stored(webhook.nc, STREAM):
        assert leaks(message.data, ALL_CREDENTIALS) == []


async def test_turned_off_credentials_are_published_as_received_with_a_warning(
    nats_server: NatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with running_webhook(nats_server, redaction=RedactionSettings(enabled=False)) as off:
            assert (await off.post_items([CASES[0].event]))[0] == 200
            (message,) = await stored(off.nc, STREAM)
    assert "redaction is OFF" in caplog.text
    assert leaks(message.data, CASES[0].credentials)


async def _store_text(store: Store) -> bytes:
    """Every column of every stored row, as ClickHouse gives them back."""
    return b"\n".join(await store.query_tsv("SELECT * FROM events", {}))


async def test_through_the_consumer_nothing_of_a_credential_is_stored(webhook: Running, store: Store) -> None:
    plain = harmless(10)
    history = [
        audit_event("create", "secrets", request=secret({"password": "v1-pw"}), response=secret({"password": "v1-pw"})),
        audit_event("update", "secrets", response=secret({"password": "v2-pw"}, version=2)),
        audit_event("update", "secrets", response=secret({"password": "v2-pw"}, version=3, labels={"a": "b"})),
    ]
    items = [*(case.event for case in CASES), *history, *plain]
    assert (await webhook.post_items(items))[0] == 200
    async with running(webhook.nc, store, stages=STAGES):
        await eventually(lambda: drained(webhook.nc), what="every message acked")
    stored_text = await _store_text(store)
    assert leaks(stored_text, [*ALL_CREDENTIALS, "v1-pw", "v2-pw"]) == []

    rows = await store.query_tsv("SELECT event_json FROM events", {})
    assert len(rows) == len(items)
    by_id = {event_key(orjson.loads(row)): row for row in rows}
    for event, sent in zip(plain, as_sent(plain), strict=True):
        assert by_id[event_key(event)] == sent, "stored byte for byte"
    versions = [orjson.loads(by_id[event_key(e)])["responseObject"]["data"]["password"] for e in history]
    assert versions[0] != versions[1] == versions[2], "the markers still tell a change from none"


def _deep(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


@pytest.mark.parametrize("depth", [300, 900])
async def test_a_deeply_nested_secret_event_is_stored_or_dead_lettered_without_its_values(
    webhook: Running, depth: int
) -> None:
    # 300 levels: past orjson's encoder (the standard one re-encodes it); 900: past that too (dead-lettered whole).
    event = audit_event("create", "secrets", request=secret({"password": "deep-Pa55"}) | {"deep": _deep(depth)})
    status, summary = await webhook.post(event_list([event]))
    assert status == 200 and summary["accepted"] + summary["deadLettered"] == 1
    for stream in (STREAM, DEAD_LETTER_STREAM):
        for message in await stored(webhook.nc, stream):
            assert leaks(message.data, ["deep-Pa55", b64("deep-Pa55")]) == []


async def test_each_redacted_event_is_counted_once_whichever_path_its_batch_takes(webhook: Running) -> None:
    expected = {c.resource: sum(1 for d in CASES if d.resource == c.resource) for c in CASES}
    # The fast path, then a batch it splits and redacts before an unknown stage sends it to the full path.
    for extra in ([], [dict(harmless(1)[1], stage="Sometime")]):
        before = {resource: redacted_count(resource) for resource in expected}
        status, summary = await webhook.post_items(
            [*(dict(c.event, auditID=f"{c.name}{len(extra)}") for c in CASES), *extra]
        )
        assert (status, summary["deadLettered"]) == (200, len(extra))
        assert {r: redacted_count(r) - before[r] for r in expected} == expected
