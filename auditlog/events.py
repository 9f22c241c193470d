"""What makes one audit event storable, decided before it reaches ClickHouse.

A row that ClickHouse cannot derive its columns from would fail the whole insert batch, so everything the
schema parses strictly (the stage timestamp) is checked here, and the fields the schema reads must have the
JSON type it expects (a wrong type would silently become an empty value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from auditlog.fields import STAGES

# DateTime64(6) holds 1900-01-01 .. 2299-12-31.
_MIN_YEAR, _MAX_YEAR = 1900, 2299
# auditlog.eventjson builds its fast decoder from these two: a field added here is checked on both paths.
OBJECT_FIELDS = ("user", "objectRef", "responseStatus", "annotations")
STRING_FIELDS = ("level", "verb", "requestURI", "userAgent")


def event_key(event: dict[str, Any]) -> str:
    """The deduplication key of an event: one per request and stage (JetStream's Nats-Msg-Id too)."""
    return key_of(event["auditID"], event["stage"])


def key_of(audit_id: str, stage: str) -> str:
    return f"{audit_id}-{stage}"


def parse_timestamp(value: str) -> datetime:
    """RFC3339 with any offset, microsecond precision (kube-apiserver writes `2026-11-28T10:00:00.123456Z`)."""
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return stamp


def problem(event: Any) -> str | None:
    """Why `event` cannot be stored, or None when it can."""
    if not isinstance(event, dict):
        return f"item is a JSON {type(event).__name__}, not an audit event object"
    why = identity_problem(event.get("auditID"), event.get("stage"), event.get("stageTimestamp"))
    if why is not None:
        return why
    # One lookup per field (absent and null read alike): this runs for every event, in the webhook and the consumer.
    for name in OBJECT_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, dict):
            return f"{name} must be an object"
    for name in STRING_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, str):
            return f"{name} must be a string"
    return None


def identity_problem(audit_id: Any, stage: Any, stamp: Any) -> str | None:
    """What `problem()` finds wrong with the fields that key and place an event (absent reads as None)."""
    if not isinstance(audit_id, str) or not audit_id:
        return "auditID is missing or not a non-empty string"
    if stage not in STAGES:
        return f"stage {stage!r} is not one of {', '.join(STAGES)}"
    if not isinstance(stamp, str):
        return "stageTimestamp is missing or not a string"
    try:
        year = parse_timestamp(stamp).year
    except ValueError:
        return f"stageTimestamp {stamp[:64]!r} is not an RFC3339 time"
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return f"stageTimestamp year {year} is outside {_MIN_YEAR}-{_MAX_YEAR}"
    return None
