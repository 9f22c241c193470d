"""The fast verdict (`valid_json` + `storable`) never disagrees with the full one (`loads` + `problem()`), and it is
the path real traffic takes."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activity.devtools.loadgen.batches import TrafficPlan, batches
from activity.devtools.loadgen.events import EventGenerator
from auditlog.eventjson import loads_exact, storable, valid_json
from auditlog.events import MAP_FIELDS, NESTED_FIELDS, STRING_FIELDS, STRING_LIST_FIELDS, problem, utc_day
from auditlog.fields import STAGES
from ingest.consumer.screening import Filtered, Poison, Row, screen
from ingest.deadletter import NOT_AUDIT_EVENT
from ingest.jetstream import MSG_ID_HEADER
from ingest.msgid import event_msg_id
from ingest.webhook.decoding import BadRequest, event_list_items, plain_items
from ingest.webhook.messages import Sorted, sort_plain

EVENTS = list(EventGenerator().events(200))
SCALARS = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False) | st.text()
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
TIMESTAMPS = st.builds(
    lambda moment, offset: moment.replace(tzinfo=timezone(timedelta(minutes=offset))).isoformat(),
    st.datetimes(min_value=datetime(1800, 1, 1), max_value=datetime(2400, 1, 1)),
    st.integers(-14 * 60, 14 * 60),
) | st.text(max_size=30)
JUDGED = ["auditID", "stage", "stageTimestamp", *NESTED_FIELDS, *MAP_FIELDS, *STRING_FIELDS, *STRING_LIST_FIELDS]
MEMBERS = [(name, member) for name, members in NESTED_FIELDS.items() for member in members]


@st.composite
def items(draw: st.DrawFn) -> Any:
    """Mostly events, each judged field sometimes missing, null or of any JSON type; sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON_VALUES)
    event = dict(draw(st.sampled_from(EVENTS)))
    event["auditID"] = draw(st.sampled_from([event["auditID"], ""]) | st.text(max_size=10))
    event["stage"] = draw(st.sampled_from(STAGES) | st.text(max_size=10))
    event["stageTimestamp"] = draw(TIMESTAMPS)
    for name in draw(st.lists(st.sampled_from(JUDGED), max_size=3)):
        change = draw(st.sampled_from(["drop", "null", "other"]))
        if change == "drop":
            event.pop(name, None)
        else:
            event[name] = None if change == "null" else draw(JSON_VALUES)
    for name, member in draw(st.lists(st.sampled_from(MEMBERS), max_size=2)):  # the members the columns read
        if isinstance(event.get(name), dict):
            event[name] = {**event[name], member: draw(JSON_VALUES)}
    return event


@settings(max_examples=400)
@given(items())
def test_the_fast_verdict_is_the_full_verdict(item: Any) -> None:
    payload = orjson.dumps(item)
    assert valid_json(payload)
    full = problem(orjson.loads(payload))
    fast = storable(payload)
    if full is None:
        assert fast is not None  # a storable event is never sent the long way
        assert fast == (item["auditID"], item["stage"])
    else:
        assert fast is None


@settings(max_examples=300)
@given(items(), st.sampled_from([frozenset({"ResponseComplete"}), frozenset(STAGES)]))
def test_the_consumer_screens_every_item_as_the_full_rule_says(item: Any, stages: frozenset[str]) -> None:
    payload = orjson.dumps(item)
    verdict = screen(payload, stages, 1 << 20)
    stage = item.get("stage") if isinstance(item, dict) else None
    if stage in STAGES and stage not in stages:
        assert verdict == Filtered(stage)  # a stage not stored is filtered whatever else is wrong with it
    elif (why := problem(item)) is None:
        assert verdict == Row(payload, utc_day(item["stageTimestamp"]))  # stored byte for byte
    else:
        assert verdict == Poison(NOT_AUDIT_EVENT, why)


def test_duplicate_members_are_refused_by_the_fast_and_the_full_path_alike() -> None:
    # ClickHouse reads the first value, orjson and msgspec the last: neither is taken (tests/test_duplicate_keys.py).
    good = orjson.dumps(EVENTS[1])[:-1]
    for twice in (good + b',"auditID":""}', good + b',"auditID":"later"}'):
        assert storable(twice) is None
        verdict = screen(twice, frozenset(STAGES), 1 << 20)
        assert isinstance(verdict, Poison) and "key auditID is given more than once" in verdict.detail


# What the full path refuses or reads differently must never pass `valid_json`.
NOT_PLAIN = [
    b'{"a":1e400}',
    b'{"a":-1e400}',
    b'{"a":' + b"9" * 400 + b"}",
    b'{"a":NaN}',
    b'{"a":Infinity}',
    b'{"a":"\xff"}',
    b'{"a":"\xed\xa0\x80"}',  # a UTF-16 surrogate, encoded as UTF-8
    b'{"a":"\\ud800"}',  # a lone surrogate escape
    b'{"a":"tab\tinside"}',
    b'{"a":1} trailing',
    b'{"a":1,}',
    b"[" * 1100 + b"]" * 1100,
    b"",
]


@pytest.mark.parametrize("payload", NOT_PLAIN, ids=[repr(p[:24]) for p in NOT_PLAIN])
def test_documents_outside_plain_json_are_left_to_the_full_path(payload: bytes) -> None:
    assert not valid_json(payload)


@given(st.binary(max_size=64), st.integers(0, 400), st.sampled_from([orjson.dumps(e) for e in EVENTS[:5]]))
def test_whatever_passes_validation_parses_exactly(junk: bytes, at: int, event: bytes) -> None:
    payload = event[:at] + junk + event[at:]
    if valid_json(payload):
        assert orjson.loads(payload) == loads_exact(payload.decode())


def _rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def test_a_huge_document_leaves_no_parser_buffers_behind() -> None:
    big = b"[" + b",".join([orjson.dumps(EVENTS[1])] * 40_000) + b"]"  # ~70 MB
    assert valid_json(b"[]")  # the reused parser exists before measuring
    before = _rss_mb()
    assert valid_json(big)
    # A parser that kept its buffers would hold ~2x the document; a fresh one is freed with the call.
    assert _rss_mb() - before < len(big) / 2**20 / 2


def test_numbers_no_reader_could_parse_are_refused_by_the_exact_parser() -> None:
    for text in ('{"a":1e400}', '{"a":NaN}', '{"a":-Infinity}'):
        with pytest.raises(ValueError):
            loads_exact(text)
    assert loads_exact('{"a":123456789012345678901234567890}') == {"a": 123456789012345678901234567890}


def _fast(body: bytes, max_items: int = 1000) -> Sorted | None:
    """The receiver's fast path: what it publishes, or None when the full path takes the body."""
    plain = plain_items(body, max_items)
    if plain is None:
        return None
    return sort_plain(plain, subject="audit.k8s.test", dead_letter_subject="audit.deadletter.test", max_payload=1 << 20)


def test_generated_traffic_takes_the_fast_path_byte_for_byte() -> None:
    for batch in batches(TrafficPlan(events=2000, batch=400)):
        fast = _fast(batch.body)
        assert fast is not None and not fast.dead_letters
        full = event_list_items(batch.body, max_items=1000)
        assert [orjson.loads(message.data) for message in fast.events] == full
        assert [message.headers[MSG_ID_HEADER] for message in fast.events] == [
            event_msg_id(message.data, item["stage"]) for message, item in zip(fast.events, full, strict=True)
        ]


def test_an_event_list_with_one_bad_item_is_left_to_the_full_path() -> None:
    good = [orjson.dumps(e) for e in EVENTS[:3]]
    bad = orjson.dumps({**EVENTS[3], "stageTimestamp": "yesterday"})
    body = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[' + b",".join([*good, bad]) + b"]}"
    assert plain_items(body, max_items=1000) is not None and _fast(body) is None
    assert _fast(body.replace(bad, good[0])) is not None


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"PodList","apiVersion":"audit.k8s.io/v1","items":[]}',
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":{}}',
        b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[1e400]}',
        b"[]",
    ],
)
def test_a_body_the_full_path_refuses_is_left_to_it_to_word_the_400(body: bytes) -> None:
    assert plain_items(body, max_items=1000) is None


def test_too_many_items_are_refused_before_any_is_built() -> None:
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": EVENTS[:3]}).encode()
    with pytest.raises(BadRequest, match="EventList has 3 items, at most 2"):
        plain_items(body, max_items=2)
    assert _fast(body, max_items=3) is not None
