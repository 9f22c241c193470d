"""The storable-event rule, held against the store itself: whatever the rule accepts inserts into ClickHouse (chdb)
and reads back with every column saying what the event's JSON says, and its retention TTL lands where the calendar
says; whatever it refuses, the webhook and the consumer refuse alike, with a reason. And what the webhook accepts,
the consumer stores: an event the store cannot hold is dead-lettered by the webhook, where it is first seen."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from consumer_support import CLUSTER, dead_letters, drained, eventually, running, stored_keys
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webhook_support import running_webhook, stored

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer
from auditlog.config import parse_store_dsn
from auditlog.eventjson import loads_exact
from auditlog.events import MAX_EVENT_BYTES, MAX_RETENTION_DAYS, problem, utc_day
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION, STAGES
from auditlog.schema import Layout, migrate, ttl_statement
from auditlog.storage import Store, connect
from ingest.consumer.screening import Poison, Row, screen
from ingest.jetstream import REASON_HEADER, STREAM
from ingest.jetstream import connect as nats_connect
from ingest.webhook.decoding import event_list_items, plain_items
from ingest.webhook.messages import Sorted, sort_items, sort_plain

ALL_STAGES = frozenset(STAGES)
EVENTS = [e for e in EventGenerator().events(100) if e["stage"] == "ResponseComplete"]
WHERE = {"subject": "audit.k8s.test", "dead_letter_subject": "audit.deadletter.webhook.test"}
MAX_PAYLOAD = 8 << 20

# Every JSON type, with the edges the columns have: Int32, 64 bits, beyond; floats that look like integers.
INTS = st.integers(-(2**31), 2**31 - 1) | st.sampled_from([2**31, -(2**31) - 1, 2**63, 10**30, -(10**30)])
SCALARS = st.none() | st.booleans() | INTS | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8)
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner))
TEXT = st.text(max_size=12)  # any Unicode, NUL and other controls included


def _stamp(moment: datetime, offset_min: int, digits: int) -> str:
    zone = "Z" if offset_min == 0 else f"{'+-'[offset_min < 0]}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
    fraction = f"{moment.microsecond:06d}{moment.microsecond % 997:03d}"[:digits]
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if digits else "") + zone


def _rfc3339(earliest: datetime, latest: datetime) -> st.SearchStrategy[str]:
    offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1) | st.just(0)
    return st.builds(_stamp, st.datetimes(min_value=earliest, max_value=latest), offsets, st.integers(0, 9))


RFC3339 = _rfc3339(datetime(1900, 1, 1), datetime(2200, 1, 1))  # inside the rule's range and far outside it
IN_RANGE = _rfc3339(datetime(1970, 1, 2), datetime(2099, 12, 30))  # a day's margin for the offset
# Forms some parser reads and another does not, or reads otherwise.
ODD_STAMPS = st.sampled_from(
    [
        "2026-W49-2T10:00:00Z",
        "2026-342T10:00:00Z",
        "20261208T100000Z",
        "2026-12-08T10:00:00,5Z",
        "2026-12-08T10Z",
        "2026-12-08T10:00Z",
        "2026-12-08t10:00:00z",
        "2026-12-08 10:00:00Z",
        "2026-12-08T10:00:00",
        "2026-12-08T23:59:60Z",
        "2026-12-08T24:00:00Z",
        "2026-02-29T10:00:00Z",
        "2026-12-08T10:00:00+24:00",
        "2026-12-08T10:00:00.Z",
        "1969-12-31T23:59:59.999999Z",
        "2099-12-31T23:59:59.999999Z",
        "2100-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        "\u0662\u0660\u0662\u0666-12-08T10:00:00Z",  # Arabic-Indic digits: \d would take them
    ]
)


def _optional(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(inner, inner, inner, st.none())  # null reads as absent


STRINGS = st.lists(TEXT, max_size=3)
ANNOTATION_KEYS = TEXT | st.sampled_from([SCOPE_TYPE_ANNOTATION, SCOPE_NAME_ANNOTATION])
OBJECT_REF = ("apiGroup", "apiVersion", "resource", "subresource", "namespace", "name")
# Each field the columns read: what a storable event holds there, and what it must not.
GOOD: dict[str, st.SearchStrategy[Any]] = {
    "auditID": st.text(min_size=1, max_size=12),
    "stage": st.sampled_from(STAGES),
    "stageTimestamp": IN_RANGE,
    **{name: _optional(TEXT) for name in ("level", "verb", "requestURI", "userAgent")},
    "sourceIPs": _optional(STRINGS),
    "user.username": _optional(TEXT),
    "user.uid": _optional(TEXT),
    "user.groups": _optional(STRINGS),
    **{f"objectRef.{m}": _optional(TEXT) for m in OBJECT_REF},
    "responseStatus.code": _optional(st.integers(-(2**31), 2**31 - 1)),
    "annotations": _optional(st.dictionaries(ANNOTATION_KEYS, TEXT, max_size=3)),
}
BAD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "auditID": st.just("") | ANY,
    "stage": ANY,
    "stageTimestamp": ODD_STAMPS | RFC3339 | ANY,
    "sourceIPs": st.lists(TEXT | SCALARS, min_size=1, max_size=3) | ANY,
    "user.groups": st.lists(TEXT | SCALARS, min_size=1, max_size=3) | ANY,
    "responseStatus.code": INTS | ANY,
    "annotations": st.dictionaries(ANNOTATION_KEYS, SCALARS, min_size=1, max_size=2) | ANY,
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A generated event whose judged fields are drawn one by one; about half are storable, the rest have one or
    two fields of another type or range, or a whole object (user, objectRef, ...) of any JSON type."""
    event: dict[str, Any] = dict(draw(st.sampled_from(EVENTS)))
    for name in ("user", "objectRef", "responseStatus"):
        event[name] = {}
    spoiled = set(draw(st.lists(st.sampled_from([*GOOD, "user", "objectRef", "responseStatus"]), max_size=2)))
    for path, good in GOOD.items():
        value = draw(BAD_VALUES.get(path, ANY) if path in spoiled else good)
        outer, _, inner = path.partition(".")
        if inner:
            event[outer][inner] = value
        else:
            event[path] = value
    for name in ("user", "objectRef", "responseStatus"):
        if name in spoiled:
            event[name] = draw(ANY)
    for name in draw(st.lists(st.sampled_from(sorted(GOOD)), max_size=2)):
        event.pop(name, None)  # absent reads as null (an identity field absent is refused)
    return event


def _encode(event: dict[str, Any], lone_surrogate: bool) -> bytes:
    """Compact JSON as a producer would send it: the standard encoder, which writes integers of any size."""
    if lone_surrogate:  # an escape that decodes to no Unicode text, inside a field no column reads
        event = dict(event, requestObject={"note": "\ud800"})
        return json.dumps(event, separators=(",", ":")).encode()
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def _webhook(payload: bytes) -> Sorted:
    """What the webhook makes of an EventList holding this one item: the fast path, else the full one."""
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + payload + b"]}"
    plain = plain_items(body, 10)
    if plain is not None and (fast := sort_plain(plain, **WHERE, max_payload=MAX_PAYLOAD)) is not None:
        return fast
    return sort_items(event_list_items(body, 10), **WHERE, max_payload=MAX_PAYLOAD)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _expected(event: dict[str, Any]) -> dict[str, Any]:
    """Every column, as the event's JSON says it (absent and null read as the column's default)."""

    def member(name: str, key: str, default: Any) -> Any:
        value = (event.get(name) or {}).get(key)
        return default if value is None else value

    annotations = event.get("annotations") or {}
    return {
        "audit_id": event["auditID"],
        "stage": event["stage"],
        "timestamp": datetime.fromisoformat(event["stageTimestamp"]).astimezone(UTC),
        "level": event.get("level") or "",
        "verb": event.get("verb") or "",
        "request_uri": event.get("requestURI") or "",
        "user": member("user", "username", ""),
        "user_uid": member("user", "uid", ""),
        "user_groups": member("user", "groups", []),
        "source_ips": event.get("sourceIPs") or [],
        "user_agent": event.get("userAgent") or "",
        "api_group": member("objectRef", "apiGroup", ""),
        "api_version": member("objectRef", "apiVersion", ""),
        "resource": member("objectRef", "resource", ""),
        "subresource": member("objectRef", "subresource", ""),
        "namespace": member("objectRef", "namespace", ""),
        "name": member("objectRef", "name", ""),
        "status_code": member("responseStatus", "code", 0),
        "annotations": annotations,
        "scope_type": annotations.get(SCOPE_TYPE_ANNOTATION, ""),
        "scope_name": annotations.get(SCOPE_NAME_ANNOTATION, ""),
    }


COLUMNS = list(_expected(dict(EVENTS[0])))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    # One store for every example (each truncates it): chdb opens one directory per process at a time.
    config = parse_store_dsn(f"chdb://{tmp_path / 'store'}")
    migrate(config, retention_days=0)  # no TTL: the rule, not retention, is under test (its arithmetic is, below)
    c = connect(config)
    try:
        yield c
    finally:
        c.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events(), st.integers(0, 19))
def test_what_the_rule_accepts_the_store_holds_as_its_json_says_and_what_it_refuses_is_refused_everywhere(
    client: Client, event: dict[str, Any], variant: int
) -> None:
    payload = _encode(event, lone_surrogate=variant == 7)
    verdict = screen(payload, ALL_STAGES, MAX_EVENT_BYTES)
    webhook = _webhook(payload)
    if not isinstance(verdict, Row):
        assert isinstance(verdict, Poison) and verdict.detail  # refused, saying why
        assert webhook.events == [] and len(webhook.dead_letters) == 1  # the webhook refuses it too
        assert webhook.dead_letters[0].headers[REASON_HEADER]
        return
    assert [out.data for out in webhook.events] == [payload]  # the webhook publishes it as sent
    parsed = loads_exact(payload.decode())
    assert problem(parsed) is None  # the full path agrees with the fast one

    client.command("TRUNCATE TABLE events")
    client.raw_insert("events", column_names=["event_json"], insert_block=verdict.json, fmt="LineAsString")
    sql = (
        f"SELECT {', '.join(COLUMNS)}, toString(toYYYYMMDD(timestamp)), "
        f"toDateTime(timestamp) + INTERVAL 90 DAY, toDateTime(timestamp) + INTERVAL {MAX_RETENTION_DAYS} DAY "
        "FROM events"
    )
    rows = client.query(sql).result_rows
    assert len(rows) == 1
    *values, day, ttl_default, ttl_longest = rows[0]
    stored = dict(zip(COLUMNS, values, strict=True))
    stored["timestamp"] = _utc(stored["timestamp"])
    assert stored == _expected(parsed)
    assert day == utc_day(parsed["stageTimestamp"]).replace("-", "")  # the partition the consumer grouped it by
    moment = stored["timestamp"].replace(microsecond=0)
    for ttl, days in ((ttl_default, 90), (ttl_longest, MAX_RETENTION_DAYS)):  # the retention TTL never wraps
        assert _utc(ttl) == moment + timedelta(days=days)


def test_a_stage_timestamp_is_read_alike_at_every_offset_and_precision() -> None:
    # A few by hand besides the property: what ClickHouse and Python both read, to the microsecond.
    for stamp, utc in [
        ("2026-12-08T10:00:00.1234567Z", datetime(2026, 12, 8, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2026-12-08T01:00:00+14:00", datetime(2026, 12, 7, 11, tzinfo=UTC)),
        ("2026-12-08T23:30:00-01:00", datetime(2026, 12, 9, 0, 30, tzinfo=UTC)),
    ]:
        assert datetime.fromisoformat(stamp).astimezone(UTC) == utc
        assert utc_day(stamp) == utc.date().isoformat()


BAD = {
    "iso-week-date": {"stageTimestamp": "2026-W49-2T10:00:00Z"},
    "year-1950": {"stageTimestamp": "1950-06-01T00:00:00Z"},
    "year-2150": {"stageTimestamp": "2150-06-01T00:00:00Z"},
    "huge-status-code": {"responseStatus": {"code": 10**30}},
    "float-status-code": {"responseStatus": {"code": 200.5}},
    "non-string-annotation": {"annotations": {"a": 1}},
    "null-group": {"user": {"username": "alice", "groups": [None]}},
    "1.5-MB": {"requestObject": {"data": "x" * (MAX_EVENT_BYTES + MAX_EVENT_BYTES // 2)}},
}


@pytest.mark.parametrize("change", BAD.values(), ids=list(BAD))
async def test_what_the_store_cannot_hold_is_dead_lettered_by_the_webhook_and_its_neighbours_stored(
    nats_server: NatsServer, tmp_path: Path, change: dict[str, Any]
) -> None:
    good = [dict(e, auditID=f"good-{n}") for n, e in enumerate(EVENTS[:3])]
    bad = dict(EVENTS[3], auditID="bad", **change)
    async with running_webhook(nats_server, cluster=CLUSTER) as webhook:
        status, answer = await webhook.post(
            json.dumps(
                {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [good[0], bad, *good[1:]]}
            ).encode()
        )
        assert status == 200, answer
        assert (answer["accepted"], answer["deadLettered"]) == (len(good), 1)
        published = [orjson.loads(m.data)["auditID"] for m in await stored(webhook.nc, STREAM)]
        assert published == [e["auditID"] for e in good]  # refused where first seen: never published
    nc = await nats_connect(nats_server.url, "test")
    config = parse_store_dsn(f"chdb://{tmp_path / 'store'}")
    migrate(config, retention_days=0)
    store = Store(config)
    try:
        letters = await dead_letters(nc)
        assert len(letters) == 1 and letters[0].headers and letters[0].headers[REASON_HEADER]
        async with running(nc, store):
            await eventually(lambda: drained(nc), what="every message acked")
        assert sorted(await stored_keys(store)) == sorted((e["auditID"], e["stage"]) for e in good)
        assert len(await dead_letters(nc)) == 1  # the consumer had nothing to refuse
    finally:
        store.close()
        await nc.close()


def test_a_retention_the_ttl_arithmetic_cannot_hold_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"over the {MAX_RETENTION_DAYS}-day maximum"):
        ttl_statement(Layout("audit"), MAX_RETENTION_DAYS + 1)
    assert ttl_statement(Layout("audit"), MAX_RETENTION_DAYS).endswith(f"+ INTERVAL {MAX_RETENTION_DAYS} DAY")
    store = f"chdb://{tmp_path / 'store'}"
    done = subprocess.run(
        [sys.executable, "-m", "activity.cli", "migrate", "--store", store, "--retention-days", "3000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"3000 is not from 0 to {MAX_RETENTION_DAYS}" in done.stderr
    assert not (tmp_path / "store").exists()  # refused before touching the store


def test_an_integer_beyond_64_bits_outside_the_columns_is_published_with_every_digit() -> None:
    """The slow path re-encodes what it parsed: a number parsed as a float would come back with digits lost."""
    event = dict(EVENTS[0], user={"username": "u", "extra": {"n": ["x"]}})
    payload = orjson.dumps(event).replace(b'"extra":', b'"big":12345678901234567890123,"extra":')
    [published] = _webhook(payload).events
    assert b"12345678901234567890123" in published.data
