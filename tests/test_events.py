"""Which events are storable: the rule both the webhook and the consumer apply before ClickHouse sees a row."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from activity.devtools.loadgen.events import EventGenerator
from auditlog.events import problem

GOOD: dict[str, Any] = {"auditID": "a1", "stage": "ResponseComplete", "stageTimestamp": "2026-11-28T10:00:00.5+02:00"}


def test_generated_events_are_all_storable() -> None:
    assert all(problem(e) is None for e in EventGenerator().events(300))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"auditID": ""}, "auditID"),
        ({"auditID": 5}, "auditID"),
        ({"stage": "Done"}, "stage 'Done' is not one of"),
        ({"stageTimestamp": None}, "stageTimestamp is missing"),
        ({"stageTimestamp": "yesterday"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-11-28T10:00:00"}, "not an RFC3339 time"),
        ({"stageTimestamp": "0001-01-01T00:00:00Z"}, "outside 1970-01-01 to 2100-01-01"),
        ({"stageTimestamp": "1950-06-01T00:00:00Z"}, "outside 1970-01-01 to 2100-01-01"),
        ({"stageTimestamp": "2150-06-01T00:00:00Z"}, "outside 1970-01-01 to 2100-01-01"),
        ({"stageTimestamp": "1970-01-01T00:30:00+01:00"}, "outside 1970-01-01 to 2100-01-01"),
        ({"stageTimestamp": "2026-W49-2T10:00:00Z"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-342T10:00:00Z"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-12-08T10:00:00,5Z"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-12-08T10Z"}, "not an RFC3339 time"),
        ({"stageTimestamp": "20261208T100000Z"}, "not an RFC3339 time"),
        ({"stageTimestamp": "2026-02-30T10:00:00Z"}, "not a valid date"),
        ({"responseStatus": {"code": 10**30}}, "responseStatus.code must be an integer"),
        ({"responseStatus": {"code": 2**31}}, "responseStatus.code must be an integer"),
        ({"responseStatus": {"code": 200.0}}, "responseStatus.code must be an integer"),
        ({"responseStatus": {"code": True}}, "responseStatus.code must be an integer"),
        ({"responseStatus": {"code": "200"}}, "responseStatus.code must be an integer"),
        ({"user": {"username": 7}}, "user.username must be a string"),
        ({"user": {"username": "a", "groups": ["x", None]}}, "user.groups must be a list of strings"),
        ({"sourceIPs": "10.0.0.1"}, "sourceIPs must be a list of strings"),
        ({"objectRef": {"name": {"x": 1}}}, "objectRef.name must be a string"),
        ({"annotations": {"a": 1}}, "annotations must be an object of strings"),
        ({"annotations": {"a": None}}, "annotations must be an object of strings"),
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
