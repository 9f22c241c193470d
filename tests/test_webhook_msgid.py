"""JetStream's dedupe id: exact copies of an event share it, different events never do, whatever their auditID.

kube-apiserver takes the `Audit-ID` header from the client, so a client can give two different requests the same
auditID: a harmless one first, then a delete inside the duplicate window. Both must be stored and shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from consumer_support import drained, running
from hypothesis import given, settings
from hypothesis import strategies as st
from polling import eventually
from webhook_support import Running, event_list, msg_ids, running_webhook, stored

from activity.devtools.natsd import NatsServer
from auditlog.fields import STAGES
from auditlog.reading import PageQuery, read_page
from auditlog.storage import Store
from ingest.jetstream import STREAM
from ingest.msgid import event_msg_id, stage_named
from ingest.webhook.decoding import event_list_items, plain_items
from ingest.webhook.messages import Sorted, sort_items, sort_plain

WHERE: dict[str, Any] = {"subject": "audit.k8s.t", "dead_letter_subject": "audit.deadletter.t", "max_payload": 1 << 20}


def _event(audit_id: str, verb: str, stamp: str, stage: str = "ResponseComplete", **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "stageTimestamp": stamp,
        "requestReceivedTimestamp": stamp,
        "verb": verb,
        "user": {"username": "mallory"},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        **extra,
    }


EVENTS = st.builds(
    _event,
    # any text, CR, LF and NUL included: the id must tell them apart byte for byte
    st.text(min_size=1, max_size=12) | st.sampled_from(["x\ry", "x\ny", "x y", "x\r\ny", "x\ty"]),
    st.sampled_from(["get", "list", "delete", "update"]),
    st.sampled_from(["2026-12-01T10:00:00.000001Z", "2026-12-01T10:00:00.000002Z"]),
    st.sampled_from(STAGES),
)


def _both_paths(items: list[dict[str, Any]]) -> list[Sorted]:
    """What the receiver publishes for these items, by the fast path (when it takes them) and by the full path."""
    body = event_list(items)
    sorted_ = [sort_items(event_list_items(body, 1000), **WHERE)]
    plain = plain_items(body, 1000)
    fast = sort_plain(plain, **WHERE) if plain is not None else None
    return sorted_ if fast is None else [*sorted_, fast]


@settings(max_examples=150, deadline=None)
@given(st.lists(EVENTS, min_size=1, max_size=12), st.data())
def test_copies_share_an_id_and_different_events_never_do(items: list[dict[str, Any]], data: st.DataObject) -> None:
    copies = data.draw(st.lists(st.sampled_from(items), max_size=4))  # byte-identical re-sends in the same batch
    for out in _both_paths([*items, *copies]):
        assert not out.dead_letters
        by_id: dict[str, bytes] = {}
        for message in out.events:
            msg_id = message.headers["Nats-Msg-Id"]
            assert by_id.setdefault(msg_id, message.data) == message.data  # one id, one byte string
            assert stage_named(msg_id) == orjson.loads(message.data)["stage"]
        assert len(by_id) == len({m.data for m in out.events})  # one byte string, one id


def test_auditids_with_cr_lf_or_space_get_ids_of_their_own() -> None:
    stamp = "2026-12-01T10:00:00Z"
    items = [_event(audit_id, "get", stamp) for audit_id in ("x\ry", "x\ny", "x y", "x\r\ny")]
    for out in _both_paths(items):
        assert len({m.headers["Nats-Msg-Id"] for m in out.events}) == len(items)


def test_the_id_is_a_hash_of_the_exact_bytes_and_names_the_stage() -> None:
    one, other = b'{"auditID":"a","verb":"get"}', b'{"auditID":"a","verb":"delete"}'
    assert event_msg_id(one, "ResponseComplete") == event_msg_id(bytes(one), "ResponseComplete")
    assert event_msg_id(one, "ResponseComplete") != event_msg_id(other, "ResponseComplete")
    assert stage_named(event_msg_id(one, "RequestReceived")) == "RequestReceived"


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server) as running_:
        yield running_


async def _shown(store: Store) -> list[dict[str, Any]]:
    page = await read_page(store, PageQuery(start_us=0, end_us=2**62, limit=100))
    return [orjson.loads(line) for line in page.events]


async def test_a_delete_reusing_the_audit_id_of_a_harmless_request_is_stored_and_shown(
    webhook: Running, store: Store
) -> None:
    harmless = _event("reused-id", "get", "2026-12-01T10:00:00.100000Z")
    delete = _event("reused-id", "delete", "2026-12-01T10:00:01.200000Z")
    spaced = [_event(audit_id, "patch", "2026-12-01T10:00:02Z") for audit_id in ("x\ry", "x\ny", "x y")]

    assert await webhook.post_items([harmless]) == (200, {"accepted": 1, "deadLettered": 0, "duplicates": 0})
    # Inside the duplicate window, the same auditID and stage: a different request, so not a duplicate.
    assert await webhook.post_items([delete]) == (200, {"accepted": 1, "deadLettered": 0, "duplicates": 0})
    assert await webhook.post_items(spaced) == (200, {"accepted": 3, "deadLettered": 0, "duplicates": 0})
    # A true re-send (kube-apiserver retrying the batch byte for byte) is still collapsed.
    assert await webhook.post_items([delete]) == (200, {"accepted": 1, "deadLettered": 0, "duplicates": 1})

    messages = await stored(webhook.nc, STREAM)
    sent, expected = msg_ids(messages)
    assert sent == expected and len(messages) == 5

    async with running(webhook.nc, store):
        await eventually(lambda: drained(webhook.nc), what="the consumer to ack the whole stream")
    shown = await _shown(store)
    assert sorted((e["auditID"], e["verb"]) for e in shown) == sorted(
        [("reused-id", "get"), ("reused-id", "delete"), ("x\ry", "patch"), ("x\ny", "patch"), ("x y", "patch")]
    )
