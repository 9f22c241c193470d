"""What happens to one pulled message, decided from its payload alone: stored, filtered out, or dead-lettered."""

from __future__ import annotations

import json
from dataclasses import dataclass

import orjson

from auditlog.eventjson import judge, key_problem, loads_exact, valid_json
from auditlog.events import problem, utc_day
from auditlog.fields import STAGES
from ingest.deadletter import DUPLICATE_KEY, NOT_AUDIT_EVENT, NOT_JSON, OVERSIZE, UNENCODABLE, reason_header
from ingest.msgid import stage_named


@dataclass(frozen=True, slots=True)
class Row:
    """An event to insert, as one-line JSON: as published when it has no raw newline, carriage return or tab.
    `day` is the UTC day of its stageTimestamp, the partition it goes to (inserts are grouped by it)."""

    json: bytes
    day: str


@dataclass(frozen=True, slots=True)
class Filtered:
    """A valid event of a stage we do not store."""

    stage: str


@dataclass(frozen=True, slots=True)
class Poison:
    """A message that can never be stored; `reason` is one of `ingest.deadletter.REASONS`, `detail` says what
    to fix."""

    reason: str
    detail: str

    @property
    def header(self) -> str:
        return reason_header(self.reason, self.detail)


Verdict = Row | Filtered | Poison


def screen(payload: bytes, stages: frozenset[str], max_event_bytes: int, msg_id: str | None = None) -> Verdict:
    """`msg_id` is the message's Nats-Msg-Id, which names the stage (ingest.msgid) as the webhook sends it: a stage
    we do not store is filtered by it without parsing the payload (half of what kube-apiserver sends)."""
    if len(payload) > max_event_bytes:
        return Poison(OVERSIZE, f"event is {len(payload)} bytes, over the {max_event_bytes}-byte limit")
    if msg_id is not None:
        named = stage_named(msg_id)
        if named in STAGES and named not in stages:
            return Filtered(named)
    # Rows are stored one per line and read back as tab-separated lines: raw whitespace between JSON tokens
    # (all JSON allows; string contents are escaped) must go, so such a payload is parsed and dumped compactly.
    laid_out = b"\n" in payload or b"\r" in payload or b"\t" in payload
    if not laid_out and valid_json(payload):
        judged = judge(payload)  # almost every event: judged without building it
        if judged is not None:
            return Row(payload, utc_day(judged.stageTimestamp)) if judged.stage in stages else Filtered(judged.stage)
    wide = False
    try:
        event = orjson.loads(payload)
    except orjson.JSONDecodeError as err:
        try:  # orjson refuses integers beyond 64 bits, which JSON (and a CRD's object) may hold
            event = loads_exact(payload.decode())
        except (ValueError, RecursionError):
            return Poison(NOT_JSON, str(err))
        wide = True
    stage = event.get("stage") if isinstance(event, dict) else None
    if stage in STAGES and stage not in stages:
        return Filtered(stage)  # filtered before validation: a stage we do not store needs no checks
    why = key_problem(payload)  # the parsed event no longer tells: the last of a key's values won
    if why is not None:
        return Poison(DUPLICATE_KEY, why)
    why = problem(event)
    if why is not None:
        return Poison(NOT_AUDIT_EVENT, why)
    day = utc_day(event["stageTimestamp"])
    if wide:  # the standard parser keeps lone surrogates (`"\ud800"`), which no store column can hold
        try:
            compact = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError as err:
            return Poison(UNENCODABLE, f"event holds text that is not valid Unicode: {err.reason}")
        return Row(compact if laid_out else payload, day)
    return Row(orjson.dumps(event) if laid_out else payload, day)
