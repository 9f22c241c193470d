"""Property: whatever mix of good and broken items an EventList holds, the receiver answers 200 while NATS is up,
accepts exactly the storable events, dead-letters exactly the rest, and JetStream grows by the new events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webhook_support import Running, running_webhook

from activity.devtools.natsd import NatsServer
from auditlog.fields import STAGES
from ingest.jetstream import DEAD_LETTER_STREAM, STREAM

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=4,
)
TIMESTAMPS = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30)),  # the storable range
    st.integers(-12 * 60, 12 * 60),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        # Mostly unique, sometimes repeated, so that dedupe inside one batch is exercised too.
        "auditID": draw(st.uuids().map(str) | st.sampled_from(["same-a", "same-b"]) | st.text(min_size=1)),
        "stage": draw(st.sampled_from(STAGES)),
        "stageTimestamp": draw(TIMESTAMPS),
        "verb": draw(st.sampled_from(["get", "create", "delete"])),
        "user": {"username": draw(st.text(max_size=30))},
    }
    event.update(draw(st.dictionaries(st.sampled_from(["requestObject", "x-extra"]), JSON_VALUES)))
    event.update(draw(st.dictionaries(st.just("sourceIPs"), st.lists(st.text(max_size=8), max_size=2))))
    return event


def _broken(event: dict[str, Any], how: str, junk: Any) -> Any:
    match how:
        case "drop":
            return {k: v for k, v in event.items() if k not in ("auditID", "stageTimestamp")}
        case "stage":
            return dict(event, stage="Sometime")
        case "timestamp":
            return dict(event, stageTimestamp="not a time" if not isinstance(junk, str) else junk + "x")
        case "user":
            return dict(event, user=[junk])
        case "empty_id":
            return dict(event, auditID="")
        case _:
            return [junk]  # not an object at all


HOW = st.sampled_from(["good", "good", "drop", "stage", "timestamp", "user", "empty_id", "not_object"])
# (storable?, item)
ITEMS = st.lists(st.tuples(events(), HOW, JSON_VALUES), max_size=20).map(
    lambda drawn: [(how == "good", event if how == "good" else _broken(event, how, junk)) for event, how, junk in drawn]
)


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server) as running:
        yield running


async def _count(webhook: Running, stream: str) -> int:
    return int((await webhook.nc.jetstream().stream_info(stream)).state.messages)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=ITEMS)
async def test_any_mix_of_items_is_accepted_or_dead_lettered_never_refused(
    webhook: Running, items: list[tuple[bool, Any]]
) -> None:
    stored_before = await _count(webhook, STREAM)
    status, summary = await webhook.post_items([item for _, item in items])
    assert status == 200, summary
    good = sum(1 for ok, _ in items if ok)
    assert summary["accepted"] + summary["deadLettered"] == len(items)
    assert (summary["accepted"], summary["deadLettered"]) == (good, len(items) - good)
    assert await _count(webhook, STREAM) - stored_before == summary["accepted"] - summary["duplicates"]
    assert await _count(webhook, DEAD_LETTER_STREAM) >= min(1, summary["deadLettered"])


BODIES = (
    st.binary(max_size=300)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(st.sampled_from(["kind", "apiVersion", "items"]), JSON_VALUES).map(
        lambda doc: json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", **doc}).encode()
    )
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=BODIES)
async def test_any_body_gets_a_success_or_a_400_that_says_why(webhook: Running, body: bytes) -> None:
    status, answer = await webhook.post(body)
    assert status in (200, 400), answer
    if status == 400:
        assert answer["kind"] == "Status" and answer["message"]
