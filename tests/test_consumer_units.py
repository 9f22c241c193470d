"""The consumer's pure parts: screening a payload, reading a JetStream reply subject, settings and flags,
telling a data error from a store outage, and the backoff."""

from __future__ import annotations

import argparse
import gc
import json
import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from activity.cli import apply_env_defaults, build_parser
from activity.devtools.loadgen.events import EventGenerator
from auditlog.events import utc_day
from auditlog.storeerrors import InsertFailure, classify
from ingest.consumer.command import add_arguments, settings_from
from ingest.consumer.consumer import _OLDER_GC_PASSES, _OlderGCPasses
from ingest.consumer.partitions import by_partition, halves
from ingest.consumer.puller import Delivery, delivery
from ingest.consumer.screening import Filtered, Poison, Row, screen
from ingest.consumer.settings import ConsumerSettings, SettingsError
from ingest.consumer.sink import cluster_of
from ingest.deadletter import NOT_AUDIT_EVENT, NOT_JSON, OVERSIZE, UNENCODABLE
from ingest.msgid import event_msg_id

STAGES = frozenset({"ResponseComplete"})
EVENTS = list(EventGenerator().events(20))
COMPLETE = [e for e in EVENTS if e["stage"] == "ResponseComplete"]
DAY = utc_day(COMPLETE[0]["stageTimestamp"])


def test_a_compact_event_of_a_stored_stage_is_stored_byte_for_byte() -> None:
    payload = orjson.dumps(COMPLETE[0])
    assert screen(payload, STAGES, 1 << 20) == Row(payload, DAY)


def test_integers_beyond_64_bits_are_valid_json_and_stored() -> None:
    event = {**COMPLETE[0], "responseObject": {"spec": {"size": 2**70}}}
    compact = json.dumps(event, separators=(",", ":")).encode()
    assert screen(compact, STAGES, 1 << 20) == Row(compact, DAY)
    pretty = screen(json.dumps(event, indent=1).encode(), STAGES, 1 << 20)
    assert isinstance(pretty, Row)
    assert b"\n" not in pretty.json
    assert json.loads(pretty.json) == event


def test_other_stages_are_filtered() -> None:
    received = next(e for e in EVENTS if e["stage"] == "RequestReceived")
    assert screen(orjson.dumps(received), STAGES, 1 << 20) == Filtered("RequestReceived")
    # A stage we do not store is not validated either: nothing of it would be kept.
    incomplete = {k: v for k, v in received.items() if k != "auditID"}
    assert screen(orjson.dumps(incomplete), STAGES, 1 << 20) == Filtered("RequestReceived")


def test_a_stage_we_do_not_store_is_filtered_by_its_message_id_before_parsing() -> None:
    assert screen(b"{not json", STAGES, 1 << 20, "4f1c-RequestReceived") == Filtered("RequestReceived")
    # What is kept is still parsed and checked, whatever its id says; an id of no stage changes nothing.
    payload = orjson.dumps(COMPLETE[0])
    assert screen(payload, STAGES, 1 << 20, event_msg_id(payload, "ResponseComplete")) == Row(payload, DAY)
    assert screen(b"{not json", STAGES, 1 << 20, event_msg_id(b"{not json", "RequestReceived")) == Filtered(
        "RequestReceived"
    )
    assert screen(b"{not json", STAGES, 1 << 20, "4f1c-ResponseComplete") == screen(b"{not json", STAGES, 1 << 20)
    assert isinstance(screen(b"{not json", STAGES, 1 << 20, "deadletter-4f1c"), Poison)
    assert screen(b"x" * 300, STAGES, 200, "4f1c-RequestReceived") == screen(b"x" * 300, STAGES, 200)


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        (b"{oops", NOT_JSON, "unexpected"),
        (b"\xff\xfe", NOT_JSON, "utf-8"),
        # Numbers no reader of the event could parse (kubectl's decoder refuses them): never stored.
        (orjson.dumps(COMPLETE[0])[:-1] + b',"x":1e400}', NOT_JSON, "number"),
        (orjson.dumps(COMPLETE[0])[:-1] + b',"x":NaN}', NOT_JSON, "unexpected"),
        (b'"an event"', NOT_AUDIT_EVENT, "not an audit event"),
        (orjson.dumps({**COMPLETE[0], "auditID": ""}), NOT_AUDIT_EVENT, "auditID"),
        (orjson.dumps({k: v for k, v in COMPLETE[0].items() if k != "stageTimestamp"}), NOT_AUDIT_EVENT, "stageT"),
        (orjson.dumps({**COMPLETE[0], "stage": "Done"}), NOT_AUDIT_EVENT, "stage"),
        (orjson.dumps({**COMPLETE[0], "pad": "x" * 5000}), OVERSIZE, "over the 4096-byte limit"),
        # A lone surrogate (read by the standard parser, which a 65-bit integer sends it to): no column holds it.
        (orjson.dumps(COMPLETE[0])[:-1] + b',"n":36893488147419103232,"s":"\\ud800"}', UNENCODABLE, "Unicode"),
    ],
)
def test_poison_says_why(payload: bytes, reason: str, says: str) -> None:
    verdict = screen(payload, STAGES, 4096)
    assert isinstance(verdict, Poison)
    assert verdict.reason == reason
    assert says.lower() in verdict.detail.lower()
    assert verdict.header.startswith(reason + ": ")


whitespace = st.sampled_from([" ", "\n", "\t", "\r\n", "\r"])


@given(
    event=st.sampled_from(COMPLETE),
    extra=st.dictionaries(st.text(max_size=8), st.text(max_size=20), max_size=4),
    pad=whitespace,
)
def test_any_json_layout_is_stored_as_one_compact_line_with_the_same_content(
    event: dict[str, object], extra: dict[str, str], pad: str
) -> None:
    full = {**event, "extra": extra}
    # Pretty-print with arbitrary whitespace between tokens, as a hand-written or other producer might.
    layout = orjson.dumps(full, option=orjson.OPT_INDENT_2).decode().replace("\n", pad + "\n").encode()
    verdict = screen(layout, STAGES, 1 << 20)
    assert isinstance(verdict, Row)
    assert b"\n" not in verdict.json and b"\r" not in verdict.json and b"\t" not in verdict.json
    assert orjson.loads(verdict.json) == full


@given(st.binary(max_size=300))
def test_any_bytes_get_a_verdict(payload: bytes) -> None:
    verdict = screen(payload, STAGES, 200)
    if len(payload) > 200:
        assert verdict == Poison(OVERSIZE, f"event is {len(payload)} bytes, over the 200-byte limit")
    else:
        assert isinstance(verdict, Poison)  # random bytes are never a valid audit event


def test_reply_subjects_give_sequence_deliveries_and_pending() -> None:
    v1 = "$JS.ACK.AUDIT_EVENTS.activity-clickhouse.3.1042.977.1795894125868837000.12"
    assert delivery(v1) == Delivery(stream_seq=1042, delivered=3, pending=12)
    v2 = "$JS.ACK.hub.ACCHASH.AUDIT_EVENTS.activity-clickhouse.1.7.6.1795894125868837000.0.a1b2c3"
    assert delivery(v2) == Delivery(stream_seq=7, delivered=1, pending=0)
    assert delivery("_INBOX.abc.1") is None
    assert delivery("$JS.ACK.S.C.x.1.1.1.1") is None


@pytest.mark.parametrize(
    ("message", "failure"),
    [
        ("DatabaseError: Code: 41. DB::Exception: Cannot read DateTime", InsertFailure.DATA),
        ("Code: 27. DB::Exception: Cannot parse input", InsertFailure.DATA),
        ("ChdbError: Code: 469. DB::Exception: Constraint `c` for table events is violated", InsertFailure.DATA),
        (
            "ChdbError: Code: 252. DB::Exception: Too many partitions for single INSERT block (more than 100).",
            InsertFailure.TOO_WIDE,
        ),
        # The same code for an overloaded store: retried, never split or dead-lettered.
        ("Code: 252. DB::Exception: Too many parts (3001 with average size of 1 KiB) in table", InsertFailure.OUTAGE),
        ("DatabaseError: Code: 60. DB::Exception: Table audit.events does not exist", InsertFailure.OUTAGE),
        ("DatabaseError: Code: 241. DB::Exception: Memory limit (total) exceeded", InsertFailure.OUTAGE),
        ("OperationalError: connection refused", InsertFailure.OUTAGE),
        ("OperationalError: Code: 999999. something new", InsertFailure.OUTAGE),
    ],
)
def test_data_errors_too_wide_inserts_and_outages_are_told_apart_by_the_error(
    message: str, failure: InsertFailure
) -> None:
    assert classify(message) is failure


def test_cluster_comes_from_the_subject() -> None:
    assert cluster_of("audit.k8s.prod-1") == "prod-1"
    assert cluster_of("audit.k8s.eu.prod") == "eu.prod"
    assert cluster_of("elsewhere") == "unknown"


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"batch_events": 500, "max_ack_pending": 100}, "max_ack_pending (100) must be at least batch_events (500)"),
        ({"stages": frozenset({"Finished"})}, "['Finished']"),
        ({"stages": frozenset()}, "non-empty"),
        ({"max_event_bytes": 10, "batch_bytes": 5}, "must not exceed batch_bytes"),
        ({"batch_age_s": 0}, "batch_age_s must be positive"),
    ],
)
def test_settings_that_cannot_work_are_refused(changes: dict[str, object], says: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(says)):
        ConsumerSettings(**changes)  # type: ignore[arg-type]


def test_defaults_are_consistent() -> None:
    d = ConsumerSettings()
    assert d.max_ack_pending >= 2 * d.batch_events  # a replica holds a batch inserting and one filling
    assert d.max_event_bytes <= d.batch_bytes


def test_flags_and_environment_make_the_settings() -> None:
    parser = build_parser("consume")
    args = parser.parse_args(["consume", "--store", "chdb:///x", "--stages", "ResponseComplete,Panic"])
    settings = settings_from(args)
    assert settings.stages == frozenset({"ResponseComplete", "Panic"})
    assert settings == ConsumerSettings(stages=settings.stages)  # every other flag defaults to the settings'

    consume = argparse.ArgumentParser()
    add_arguments(consume)
    apply_env_defaults(consume, {"ACTIVITY_BATCH_EVENTS": "800", "ACTIVITY_STAGES": "Panic"})
    args = consume.parse_args(["--store", "chdb:///x"])
    assert settings_from(args).batch_events == 800
    assert settings_from(args).max_ack_pending == 4 * 800  # follows the batch unless set
    assert settings_from(args).stages == frozenset({"Panic"})


def test_older_gc_passes_are_rarer_while_any_consumer_runs_and_restored_after_the_last() -> None:
    before = gc.get_threshold()
    rarer = (before[0], *(t * _OlderGCPasses.SLOWDOWN for t in before[1:]))
    with _OLDER_GC_PASSES.rarer():
        with _OLDER_GC_PASSES.rarer():  # a second replica in the same process does not compound it
            assert gc.get_threshold() == rarer
        assert gc.get_threshold() == rarer  # the first one still runs
    assert gc.get_threshold() == before


@given(st.lists(st.tuples(st.integers(0, 400), st.integers()), max_size=600), st.integers(1, 120))
def test_a_batch_is_cut_into_inserts_of_whole_days_within_the_limit(rows: list[tuple[int, int]], limit: int) -> None:
    chunks = by_partition(rows, lambda row: str(row[0]), limit)
    assert sorted(row for chunk in chunks for row in chunk) == sorted(rows)  # every row once
    assert all(chunk and len({day for day, _ in chunk}) <= limit for chunk in chunks)
    days_of = [{day for day, _ in chunk} for chunk in chunks]
    assert all(a.isdisjoint(b) for i, a in enumerate(days_of) for b in days_of[i + 1 :])  # a day is never split
    if len({day for day, _ in rows}) <= limit:
        assert chunks == ([rows] if rows else [])  # what fits stays one insert, in order
    split = halves(rows, lambda row: str(row[0]))
    if split is not None:
        first, second = split
        assert sorted(first + second) == sorted(rows) and first and second
        assert {d for d, _ in first}.isdisjoint({d for d, _ in second})
