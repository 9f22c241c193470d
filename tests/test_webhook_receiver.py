"""The webhook receiver on a real nats-server: what is stored, what is refused, and how it says so."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from nats.js.errors import NotFoundError
from webhook_support import JSON, Running, event_list, msg_ids, running_webhook, stored

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer
from ingest import deadletter
from ingest.jetstream import (
    DEAD_LETTER_SAMPLE_BYTES,
    DEAD_LETTER_STREAM,
    MSG_ID_HEADER,
    ORIGINAL_SIZE_HEADER,
    ORIGINAL_SUBJECT_HEADER,
    REASON_HEADER,
    STREAM,
    StreamSettings,
)

SUBJECT = "audit.k8s.test-1"
DEAD_SUBJECT = "audit.deadletter.webhook.test-1"


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server, max_body_bytes=4 * 1024 * 1024, max_items=1000) as running:
        yield running


def events(requests: int, seed: int = 1) -> list[dict[str, Any]]:
    from activity.devtools.loadgen.events import GeneratorSettings

    return list(EventGenerator(GeneratorSettings(seed=seed)).events(requests))


async def test_every_event_is_stored_once_with_its_subject_and_message_id(webhook: Running) -> None:
    items = events(150)
    status, summary = await webhook.post_items(items)
    assert (status, summary) == (200, {"accepted": 300, "deadLettered": 0, "duplicates": 0})

    messages = await stored(webhook.nc, STREAM)
    assert [orjson.loads(m.data) for m in messages] == items
    assert {m.subject for m in messages} == {SUBJECT}
    sent, expected = msg_ids(messages)
    assert sent == expected and len(set(sent)) == len(items)


async def test_a_resent_batch_is_kept_once_by_jetstream_dedupe(webhook: Running) -> None:
    items = events(50)
    assert (await webhook.post_items(items))[0] == 200
    status, summary = await webhook.post_items(items)
    assert (status, summary) == (200, {"accepted": 100, "deadLettered": 0, "duplicates": 100})
    assert len(await stored(webhook.nc, STREAM)) == 100


async def test_gzip_body_is_accepted(webhook: Running) -> None:
    items = events(40)
    status, summary = await webhook.post(gzip.compress(event_list(items)), {**JSON, "Content-Encoding": "gzip"})
    assert (status, summary["accepted"]) == (200, 80)
    assert [orjson.loads(m.data) for m in await stored(webhook.nc, STREAM)] == items


GOOD = events(3, seed=7)


def _without(event: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != key}


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def _gzip_bomb() -> bytes:
    # 64 MiB of zeros in ~64 KiB: the decompressed size, not the wire size, must hit the 4 MiB limit.
    return gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


# name, body, extra headers, status, words the message must hold
REFUSED = [
    ("invalid JSON", b'{"kind": "EventList", "items": [', {}, 400, "not JSON"),
    ("bad UTF-8 outside strings", b'{"kind": "EventList"\xff}', {}, 400, "not JSON"),
    ("JSON array", b"[1, 2]", {}, 400, "not an audit.k8s.io/v1 EventList"),
    ("nested past any parser", b"[" * 100_000, {}, 400, "not JSON"),
    ("number out of range", event_list([GOOD[0]]).replace(b"[{", b"[1e400,{"), {}, 400, "out of range"),
    ("wrong kind", orjson.dumps({"kind": "PodList", "apiVersion": "v1", "items": []}), {}, 400, "'PodList'"),
    (
        "wrong apiVersion",
        orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": []}),
        {},
        400,
        "expected kind 'EventList' and apiVersion 'audit.k8s.io/v1'",
    ),
    (
        "items not a list",
        orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": {"a": 1}}),
        {},
        400,
        "items is a JSON dict; it must be a list",
    ),
    ("body over the limit", event_list([{"pad": "x" * (5 * 1024 * 1024)}]), {}, 400, "over the limit"),
    ("too many items", event_list([1] * 1001), {}, 400, "1001 items, at most 1000"),
    ("gzip bomb", _gzip_bomb(), {"Content-Encoding": "gzip"}, 400, "decompressed body is over the limit"),
    ("not gzip", event_list(GOOD), {"Content-Encoding": "gzip"}, 400, "not valid gzip"),
    ("truncated gzip", gzip.compress(event_list(GOOD))[:-20], {"Content-Encoding": "gzip"}, 400, "truncated"),
    ("brotli", event_list(GOOD), {"Content-Encoding": "br"}, 415, "send identity or gzip"),
    ("form content type", event_list(GOOD), {"Content-Type": "text/plain"}, 415, "send application/json"),
]


@pytest.mark.parametrize(("body", "headers", "status", "words"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
async def test_a_body_that_is_not_an_event_list_is_refused_with_a_reason(
    webhook: Running, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    got_status, answer = await webhook.post(body, {**JSON, **headers})
    assert got_status == status
    assert answer["kind"] == "Status" and answer["code"] == status
    assert words in answer["message"]
    assert await stored(webhook.nc, STREAM) == []


OVERSIZE = dict(GOOD[0], auditID="big-one", requestObject={"pad": "x" * (9 * 1024 * 1024)})

# name, bad items (each dead-lettered), words of its reason header
BAD_ITEMS = [
    ("missing auditID", [_without(GOOD[0], "auditID")], "auditID is missing"),
    ("missing stageTimestamp", [_without(GOOD[1], "stageTimestamp")], "stageTimestamp is missing"),
    ("item not an object", ["just a string"], "item is a JSON str"),
    ("null item", [None], "item is a JSON NoneType"),
    ("bad timestamp", [dict(GOOD[0], auditID="t", stageTimestamp="yesterday")], "is not an RFC3339 time"),
    ("user is not an object", [dict(GOOD[0], auditID="u", user="alice")], "user must be an object"),
]


@pytest.mark.parametrize(("bad", "reason"), [c[1:] for c in BAD_ITEMS], ids=[c[0] for c in BAD_ITEMS])
async def test_a_bad_item_is_dead_lettered_and_its_neighbours_stored(
    webhook: Running, bad: list[Any], reason: str
) -> None:
    status, summary = await webhook.post_items([GOOD[0], *bad, GOOD[1]])
    assert (status, summary["accepted"], summary["deadLettered"]) == (200, 2, len(bad))
    assert [orjson.loads(m.data) for m in await stored(webhook.nc, STREAM)] == [GOOD[0], GOOD[1]]
    dead = await stored(webhook.nc, DEAD_LETTER_STREAM)
    assert len(dead) == len(bad)
    for message in dead:
        assert message.subject == DEAD_SUBJECT
        headers = message.headers or {}
        assert reason in headers[REASON_HEADER]
        # the consumer's words for the same fault
        assert headers[REASON_HEADER].startswith(deadletter.NOT_AUDIT_EVENT + ": ")
        assert headers[ORIGINAL_SUBJECT_HEADER] == SUBJECT


async def test_bad_utf8_inside_one_item_dead_letters_only_that_item(webhook: Running) -> None:
    body = event_list([GOOD[0], dict(GOOD[2], auditID="PLACEHOLDER"), GOOD[1]])
    status, summary = await webhook.post(body.replace(b"PLACEHOLDER", b"bad\xff\xfe"))
    assert (status, summary["accepted"], summary["deadLettered"]) == (200, 2, 1)
    assert [orjson.loads(m.data) for m in await stored(webhook.nc, STREAM)] == [GOOD[0], GOOD[1]]
    [dead] = await stored(webhook.nc, DEAD_LETTER_STREAM)
    assert (dead.headers or {})[REASON_HEADER].startswith(deadletter.UNENCODABLE + ": event cannot be encoded as JSON")
    # The undecodable bytes are kept, \u-escaped, so the item can be inspected.
    assert json.loads(dead.data) == dict(GOOD[2], auditID="bad\udcff\udcfe")


async def test_an_event_over_the_nats_message_limit_is_dead_lettered_truncated_with_its_size(
    nats_server: NatsServer,
) -> None:
    async with running_webhook(nats_server) as webhook:  # the default 64 MiB body limit lets the 9 MiB event in
        status, summary = await webhook.post_items([GOOD[0], OVERSIZE])
        assert (status, summary["accepted"], summary["deadLettered"]) == (200, 1, 1)
        [dead] = await stored(webhook.nc, DEAD_LETTER_STREAM)
        headers = dead.headers or {}
        assert "over the 1048576-byte event limit" in headers[REASON_HEADER]  # the store's rule, before NATS's
        assert headers[REASON_HEADER].startswith(deadletter.OVERSIZE + ": ")
        assert int(headers[ORIGINAL_SIZE_HEADER]) == len(orjson.dumps(OVERSIZE))
        assert len(dead.data) == DEAD_LETTER_SAMPLE_BYTES
        assert [orjson.loads(m.data) for m in await stored(webhook.nc, STREAM)] == [GOOD[0]]


async def test_a_long_audit_id_is_stored_under_a_message_id_of_fixed_size(webhook: Running) -> None:
    long_id = dict(GOOD[0], auditID="a" * 70_000)  # over the 64 KiB nats-server takes in headers
    assert (await webhook.post_items([long_id]))[0] == 200
    (message,) = await stored(webhook.nc, STREAM)
    assert orjson.loads(message.data) == long_id and len(message.headers[MSG_ID_HEADER]) < 100  # type: ignore[index]


async def test_ten_thousand_items_are_all_stored(nats_server: NatsServer) -> None:
    items = events(5000)
    async with running_webhook(nats_server) as webhook:
        status, summary = await webhook.post_items(items)
        assert (status, summary["accepted"]) == (200, 10_000)
        messages = await stored(webhook.nc, STREAM)
        sent, expected = msg_ids(messages)
        assert sent == expected and len(set(sent)) == len(items)
        assert sorted(m.data for m in messages) == sorted(orjson.dumps(e) for e in items)


async def test_an_event_list_laid_out_with_whitespace_is_stored_as_sent(webhook: Running) -> None:
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": GOOD}, indent=2).encode()
    status, summary = await webhook.post(body)
    assert (status, summary["accepted"]) == (200, len(GOOD))
    assert [orjson.loads(m.data) for m in await stored(webhook.nc, STREAM)] == GOOD


async def test_an_event_nested_deeper_than_orjson_encodes_is_still_stored(webhook: Running) -> None:
    deep = dict(GOOD[2], requestObject=_nested(300))
    assert (await webhook.post_items([deep]))[1]["accepted"] == 1
    [message] = await stored(webhook.nc, STREAM)
    assert json.loads(message.data) == deep


async def test_an_event_nested_past_what_the_encoders_take_is_kept_either_way(webhook: Running) -> None:
    # Stored as sent when the body takes the fast path; dead-lettered when the full path must re-encode it (which
    # path reaches it depends on the interpreter's recursion limit). Never lost, never a 5xx, its neighbour stored.
    body = event_list([GOOD[0], dict(GOOD[2], requestObject="DEEP")])
    status, summary = await webhook.post(body.replace(b'"DEEP"', b"[" * 1000 + b"]" * 1000))
    assert (status, summary["accepted"] + summary["deadLettered"]) == (200, 2)
    events, dead = await stored(webhook.nc, STREAM), await stored(webhook.nc, DEAD_LETTER_STREAM)
    assert orjson.loads(events[0].data) == GOOD[0] and len(events) + len(dead) == 2
    for message in dead:
        assert "cannot be encoded as JSON" in (message.headers or {})[REASON_HEADER]


async def test_an_empty_or_null_item_list_is_a_success(webhook: Running) -> None:
    for body in (event_list([]), b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":null}'):
        assert await webhook.post(body) == (200, {"accepted": 0, "deadLettered": 0, "duplicates": 0})


async def test_wrong_method_is_405(webhook: Running) -> None:
    async with webhook.http.get(webhook.events_url) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "POST an EventList" in (await response.json())["message"]


async def test_streams_are_created_with_the_settings_given(nats_server: NatsServer) -> None:
    wanted = StreamSettings(name="CUSTOM", duplicate_window_s=30.0, max_age_s=3600.0, max_bytes=1 << 30)
    async with running_webhook(nats_server, stream=wanted) as webhook:
        config = (await webhook.nc.jetstream().stream_info("CUSTOM")).config
        assert (config.duplicate_window, config.max_age, config.max_bytes) == (30.0, 3600.0, 1 << 30)
        assert (await webhook.nc.jetstream().stream_info(DEAD_LETTER_STREAM)).config.name == DEAD_LETTER_STREAM
        assert (await webhook.post_items(GOOD))[0] == 200
        assert len(await stored(webhook.nc, "CUSTOM")) == len(GOOD)


async def test_without_stream_management_a_missing_stream_means_503_not_a_new_stream(nats_server: NatsServer) -> None:
    async with running_webhook(nats_server, manage_streams=False) as webhook:
        async with webhook.http.post(webhook.events_url, data=event_list(GOOD), headers=JSON) as response:
            status, answer = response.status, await response.json()
            assert response.headers["Retry-After"] == "1"
        assert status == 503
        assert "no responders" in answer["message"] and answer["reason"] == "ServiceUnavailable"
        with pytest.raises(NotFoundError):
            await webhook.nc.jetstream().stream_info(STREAM)
