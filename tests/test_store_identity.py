"""The store keeps every different event and collapses only byte-identical copies, at read time and at merge time.

kube-apiserver takes the `Audit-ID` header from the client, so two different requests can share the auditID, the
stage, the tenant scope and (same microsecond) the stageTimestamp: all of the 0001 sort key. ReplacingMergeTree
kept one of them (at insert within a block, and at every merge); the read path showed one. Migration 0002 adds the
hash of the exact bytes to the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from consumer_support import drained, running
from polling import eventually
from webhook_support import Running, running_webhook

from activity.devtools.natsd import NatsServer
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION
from auditlog.reading import PageQuery, read_page
from auditlog.storage import Store

STAMP = "2026-12-01T10:00:00.123456Z"


def _event(verb: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": "reused-audit-id",
        "stage": "ResponseComplete",
        "stageTimestamp": STAMP,
        "requestReceivedTimestamp": STAMP,
        "verb": verb,
        "user": {"username": "mallory"},
        "objectRef": {"resource": "secrets", "namespace": "prod", "name": "db", "apiVersion": "v1"},
        "annotations": {SCOPE_TYPE_ANNOTATION: "Project", SCOPE_NAME_ANNOTATION: "acme-web"},
        **extra,
    }


HARMLESS = orjson.dumps(_event("get"))
DELETE = orjson.dumps(_event("delete"))


async def _shown(store: Store) -> list[bytes]:
    page = await read_page(store, PageQuery(start_us=0, end_us=2**62, limit=100))
    assert page.next_after is None
    return list(page.events)


async def _rows(store: Store) -> list[bytes]:
    """Every stored row, copies included (no read-side dedupe)."""
    return sorted(await store.query_tsv("SELECT event_json FROM events", {}))


async def _merges(store: Store, action: str) -> None:
    """Stop background merges, so copies are still apart when read, or start them again."""
    await store.run(lambda c: c.command(f"SYSTEM {action} MERGES events"))


async def _optimize(store: Store) -> None:
    """What a background merge does, sooner or later."""
    await _merges(store, "START")
    await store.run(lambda c: c.command("OPTIMIZE TABLE events FINAL"))


@pytest.mark.parametrize("same_insert", [True, False], ids=["one-insert", "two-inserts"])
async def test_different_events_sharing_every_key_column_are_stored_shown_and_survive_merges(
    store: Store, same_insert: bool
) -> None:
    await _merges(store, "STOP")
    if same_insert:  # one webhook batch, one consumer batch: ReplacingMergeTree used to merge them at insert
        await store.insert_events([HARMLESS, DELETE])
    else:
        await store.insert_events([HARMLESS])
        await store.insert_events([DELETE])
    assert sorted(await _shown(store)) == sorted([HARMLESS, DELETE])
    await _optimize(store)
    assert await _rows(store) == sorted([HARMLESS, DELETE])
    assert sorted(await _shown(store)) == sorted([HARMLESS, DELETE])


async def test_byte_identical_copies_show_once_and_merge_into_one(store: Store) -> None:
    await _merges(store, "STOP")
    await store.insert_events([DELETE, DELETE])  # a re-sent item inside one batch
    await store.insert_events([DELETE, HARMLESS])  # a redelivered batch: another part
    assert await _rows(store) == sorted([DELETE, DELETE, HARMLESS]), "two parts, one copy each (one-block merge)"
    assert sorted(await _shown(store)) == sorted([HARMLESS, DELETE])
    await _optimize(store)
    assert await _rows(store) == sorted([HARMLESS, DELETE])
    assert sorted(await _shown(store)) == sorted([HARMLESS, DELETE])


async def test_the_identity_is_the_sha256_of_the_stored_bytes(store: Store) -> None:
    await store.insert_events([HARMLESS])
    (line,) = await store.query_tsv("SELECT hex(event_id) FROM events", {})
    assert line.decode() == hashlib.sha256(HARMLESS).hexdigest()[:32].upper()


@pytest.fixture
async def webhook(nats_server: NatsServer) -> AsyncIterator[Running]:
    async with running_webhook(nats_server) as running_:
        yield running_


async def test_a_delete_reusing_the_audit_id_and_microsecond_of_a_harmless_request_survives_the_pipeline(
    webhook: Running, store: Store
) -> None:
    harmless, delete = _event("get"), _event("delete")
    # In one batch, then the delete alone, then a byte-for-byte re-send: kube-apiserver retrying.
    assert await webhook.post_items([harmless, delete]) == (200, {"accepted": 2, "deadLettered": 0, "duplicates": 0})
    assert await webhook.post_items([delete]) == (200, {"accepted": 1, "deadLettered": 0, "duplicates": 1})
    async with running(webhook.nc, store):
        await eventually(lambda: drained(webhook.nc), what="the consumer to ack the whole stream")
    await _optimize(store)
    shown = [orjson.loads(line) for line in await _shown(store)]
    assert sorted(e["verb"] for e in shown) == ["delete", "get"]
