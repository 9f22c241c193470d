"""Which events are storable: the rule both the webhook and the consumer apply before ClickHouse sees a row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activity.loadgen.events import EventGenerator
from auditlog.events import event_key, problem

GOOD: dict[str, Any] = {"auditID": "a1", "stage": "ResponseComplete", "stageTimestamp": "2026-11-28T10:00:00.5+02:00"}


def test_generated_events_are_all_storable() -> None:
    assert all(problem(e) is None for e in EventGenerator().events(300))


def test_event_key_is_audit_id_and_stage() -> None:
    assert event_key(GOOD) == "a1-ResponseComplete"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"auditID": ""}, "auditID"),
        ({"auditID": 5}, "auditID"),
        ({"stage": "Done"}, "stage 'Done' is not one of"),
        ({"stageTimestamp": None}, "stageTimestamp is missing"),
        ({"stageTimestamp": "yesterday"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-11-28T10:00:00"}, "not an RFC3339 time"),
        ({"stageTimestamp": "0001-01-01T00:00:00Z"}, "outside 1900-2299"),
        ({"user": "alice"}, "user must be an object"),
        ({"verb": ["get"]}, "verb must be a string"),
    ],
)
def test_unstorable_events_say_why(change: dict[str, Any], reason: str) -> None:
    found = problem({**GOOD, **change})
    assert found is not None and reason in found


def test_non_objects_are_rejected() -> None:
    assert "not an audit event object" in str(problem(["a"]))


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_problem_never_raises_and_answers_str_or_none(value: Any) -> None:
    result = problem(value)
    assert result is None or (isinstance(result, str) and result)
    if result is None:
        assert isinstance(value, dict) and isinstance(value.get("auditID"), str)
