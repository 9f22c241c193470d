"""What makes one audit event storable: the one rule the webhook and the consumer apply, before ClickHouse sees it.

Every column is derived from the event's JSON inside ClickHouse, which reads a value of the wrong JSON type as
the column's default (`"code": 1e30` reads 0, `"groups": [null]` reads []), and refuses a whole insert for a
timestamp it cannot parse. So an event is storable only when each field a column reads has the JSON type and range
that column holds, and its stageTimestamp is in the one form and range both sides read alike: then the columns say
exactly what the JSON says (tests/test_storable.py inserts what this rule accepts and reads it back to hold that).
No object of the event may give a key twice (`duplicate_key_problem`): ClickHouse reads the first value, every other
reader the last (auditlog.duplicatekeys).
Absent and null read alike, as the column's default. The fast path (auditlog.eventjson) decodes the same fields
with the same types, built from the tables below.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, Final

from auditlog.fields import STAGES

# An event bigger than this is refused where it is first seen (the webhook dead-letters it, the consumer too for
# messages published by others): kube-apiserver's own webhook truncation stops near 100 KB, and the consumer's
# batches are sized for events far below it.
MAX_EVENT_BYTES: Final = 1024 * 1024

# RFC3339 exactly, in the form kube-apiserver writes (`2026-11-28T10:00:00.123456Z`) and ClickHouse's
# parseDateTime64BestEffort reads the same way. Python's fromisoformat alone also takes ISO week and ordinal dates,
# a decimal comma or a bare hour, which ClickHouse refuses or reads otherwise. Fractions beyond microseconds are
# truncated on both sides.
_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?(?:Z|[+-][0-9]{2}:[0-9]{2})", re.ASCII
)
# The retention TTL is `toDateTime(timestamp) + INTERVAL N DAY`, in DateTime's unsigned 32 bits (1970 to
# 2106-02-07 06:28:15): outside it the arithmetic wraps (a 1950 event would be kept until 2086, a 2150 one deleted
# at once). Stored times are therefore [1970, 2100), which leaves room for a retention of MAX_RETENTION_DAYS.
EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST: Final = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
MAX_RETENTION_DAYS: Final = (datetime(2106, 2, 7, 6, 28, 15, tzinfo=UTC) - LATEST).days
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1  # responseStatus.code is an Int32 column

# The fields the columns read, by the JSON type they must have. auditlog.eventjson builds its fast decoder from
# these: a field added here is checked on both paths.
STRING_FIELDS = ("level", "verb", "requestURI", "userAgent")
STRING_LIST_FIELDS = ("sourceIPs",)
# Objects and the members read from them: "str", "strs" (a list of strings) or "int32".
NESTED_FIELDS: Final[dict[str, dict[str, str]]] = {
    "user": {"username": "str", "uid": "str", "groups": "strs"},
    "objectRef": {name: "str" for name in ("apiGroup", "apiVersion", "resource", "subresource", "namespace", "name")},
    "responseStatus": {"code": "int32"},
}
MAP_FIELDS = ("annotations",)  # objects whose every value must be a string


def parse_timestamp(value: str) -> datetime:
    """RFC3339 with any offset, microsecond precision (kube-apiserver writes `2026-11-28T10:00:00.123456Z`)."""
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise ValueError("timestamp has no UTC offset")
    return stamp


def utc_day(stamp: str) -> str:
    """`YYYY-MM-DD` of a storable stageTimestamp in UTC: the day the store partitions the event by."""
    if stamp[-1] == "Z":
        return stamp[:10]
    return parse_timestamp(stamp).astimezone(UTC).date().isoformat()


def _type_problem(name: str, value: Any, kind: str) -> str | None:
    if value is None:
        return None
    if kind == "str":
        return None if isinstance(value, str) else f"{name} must be a string"
    if kind == "strs":
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return None
        return f"{name} must be a list of strings"
    # int32: bool is an int in Python, not in JSON; a float would be truncated by the column
    if type(value) is not int or not INT32_MIN <= value <= INT32_MAX:
        return f"{name} must be an integer from {INT32_MIN} to {INT32_MAX}"
    return None


def problem(event: Any) -> str | None:
    """Why `event` cannot be stored, or None when it can."""
    if not isinstance(event, dict):
        return f"item is a JSON {type(event).__name__}, not an audit event object"
    why = identity_problem(event.get("auditID"), event.get("stage"), event.get("stageTimestamp"))
    if why is not None:
        return why
    # One lookup per field (absent and null read alike): this runs for every event, in the webhook and the consumer.
    for name in STRING_FIELDS:
        why = _type_problem(name, event.get(name), "str")
        if why is not None:
            return why
    for name in STRING_LIST_FIELDS:
        why = _type_problem(name, event.get(name), "strs")
        if why is not None:
            return why
    for name, members in NESTED_FIELDS.items():
        value = event.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{name} must be an object"
        for member, kind in members.items():
            why = _type_problem(f"{name}.{member}", value.get(member), kind)
            if why is not None:
                return why
    for name in MAP_FIELDS:
        value = event.get(name)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            return f"{name} must be an object of strings"
    return None


def duplicate_key_problem(path: str) -> str:
    """The reason for an event whose bytes give the key at `path` more than once (eventjson.key_problem)."""
    return (
        f"key {path} is given more than once in one object; every key must be unique, since the store would read "
        "the first value and the API the last"
    )


def identity_problem(audit_id: Any, stage: Any, stamp: Any) -> str | None:
    """What `problem()` finds wrong with the fields that key and place an event (absent reads as None)."""
    if not isinstance(audit_id, str) or not audit_id:
        return "auditID is missing or not a non-empty string"
    if stage not in STAGES:
        return f"stage {stage!r} is not one of {', '.join(STAGES)}"
    if not isinstance(stamp, str):
        return "stageTimestamp is missing or not a string"
    return timestamp_problem(stamp)


def timestamp_problem(stamp: str) -> str | None:
    if not _RFC3339.fullmatch(stamp):
        return f"stageTimestamp {stamp[:64]!r} is not an RFC3339 time like 2026-11-28T10:00:00.123456Z"
    try:
        moment = parse_timestamp(stamp)
    except ValueError:
        return f"stageTimestamp {stamp[:64]!r} is not a valid date and time"
    if not EARLIEST <= moment < LATEST:
        return f"stageTimestamp {stamp} is outside {EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d} (UTC)"
    return None
