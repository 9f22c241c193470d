"""The generated traffic: deterministic, shaped like kube-apiserver's, and malformed exactly where asked."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from activity.devtools.loadgen.batches import TrafficPlan, batches, clocked_plan, items
from activity.devtools.loadgen.events import MALFORMED_KINDS, SYSTEM_USERS, TENANTS, malformed
from auditlog.events import problem
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION


def _sent(plan: TrafficPlan) -> list[Any]:
    return [item for batch in batches(plan) for item in orjson.loads(batch.body)["items"]]


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    events=st.integers(0, 300),
    batch=st.integers(1, 400),
    ratio=st.sampled_from([0.0, 0.05, 0.5]),
)
def test_same_plan_same_bytes(seed: int, events: int, batch: int, ratio: float) -> None:
    plan = TrafficPlan(events=events, seed=seed, batch=batch, malformed_ratio=ratio)
    first, second = list(batches(plan)), list(batches(plan))
    assert [b.body for b in first] == [b.body for b in second]
    assert all(b.items <= batch for b in first)
    assert sum(b.events for b in first) == events


def test_another_seed_is_other_traffic() -> None:
    assert _sent(TrafficPlan(events=50, seed=1)) != _sent(TrafficPlan(events=50, seed=2))


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**32), ratio=st.floats(0.01, 0.6))
def test_asking_for_malformed_items_leaves_the_valid_ones_unchanged(seed: int, ratio: float) -> None:
    clean = _sent(TrafficPlan(events=120, seed=seed))
    dirty = _sent(TrafficPlan(events=120, seed=seed, malformed_ratio=ratio))
    assert [item for item in dirty if problem(item) is None] == clean


@pytest.mark.parametrize("events", [0, 1, 7, 400, 401])
def test_exact_counts_and_stage_pairs_share_an_audit_id(events: int) -> None:
    plan = TrafficPlan(events=events, seed=3, batch=64)
    sent = _sent(plan)
    assert len(sent) == events
    assert sum(b.response_complete for b in batches(plan)) == events // 2
    by_id: dict[str, list[str]] = {}
    for event in sent:
        by_id.setdefault(event["auditID"], []).append(event["stage"])
    # Every request's RequestReceived comes first, then its ResponseComplete (an odd count leaves the last
    # request in flight).
    assert all(stages in (["RequestReceived", "ResponseComplete"], ["RequestReceived"]) for stages in by_id.values())
    assert sum(stages == ["RequestReceived"] for stages in by_id.values()) == events % 2


def test_malformed_items_are_all_rejected_and_their_share_is_the_ratio() -> None:
    plan = TrafficPlan(events=4000, seed=5, malformed_ratio=0.2)
    sent = list(items(plan))
    bad = [(item, kind) for item, kind in sent if kind is not None]
    assert all(problem(item) is not None for item, _ in bad)
    assert len({orjson.dumps(item) for item, _ in bad}) == len(bad), "no two malformed items alike"
    assert all(problem(item) is None for item, kind in sent if kind is None)
    assert 0.17 < len(bad) / len(sent) < 0.23
    assert {kind for _, kind in bad} == set(MALFORMED_KINDS)
    assert sum(b.malformed for b in batches(plan)) == len(bad)


@pytest.mark.parametrize("kind", MALFORMED_KINDS)
def test_each_malformed_kind_is_rejected_and_never_reuses_a_valid_id(kind: str) -> None:
    valid = next(item for item, _ in items(TrafficPlan(events=2, seed=9)))
    broken = malformed(valid, kind, 1)
    assert problem(broken) is not None
    assert not isinstance(broken, dict) or broken.get("auditID") != valid["auditID"]


def test_traffic_covers_what_real_clusters_send() -> None:
    sent = _sent(TrafficPlan(events=6000, seed=11))
    done = [e for e in sent if e["stage"] == "ResponseComplete"]
    users = {e["user"]["username"] for e in sent}
    assert any(u.endswith("@example.com") for u in users)
    assert any(u.startswith("system:serviceaccount:") for u in users)
    assert set(SYSTEM_USERS) <= users
    assert Counter(e["level"] for e in done).keys() == {"Metadata", "RequestResponse"}
    rich = [e for e in done if e["level"] == "RequestResponse" and e["responseStatus"]["code"] < 400]
    assert rich and all("requestObject" in e and "responseObject" in e for e in rich)
    assert {e["verb"] for e in sent} == {"get", "list", "watch", "create", "update", "patch", "delete"}
    assert {e["responseStatus"]["code"] for e in done} >= {200, 201, 403, 404, 409, 422, 500}
    assert len({e["objectRef"].get("namespace") for e in sent} - {None}) >= 5
    assert len({e["objectRef"]["resource"] for e in sent}) >= 8
    tenants = {(e["annotations"][SCOPE_TYPE_ANNOTATION], e["annotations"][SCOPE_NAME_ANNOTATION]) for e in done}
    assert tenants == set(TENANTS)
    assert all(problem(e) is None for e in sent)


def test_plan_start_and_step_set_the_clock() -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    sent = _sent(TrafficPlan(events=10, start=start, step=timedelta(seconds=1)))
    received = [e["requestReceivedTimestamp"] for e in sent if e["stage"] == "RequestReceived"]
    assert received == [f"2030-01-02T03:04:{s:02d}.000000Z" for s in range(6, 11)]


@pytest.mark.parametrize("bad", [{"events": -1}, {"batch": 0}, {"malformed_ratio": 1.0}, {"malformed_ratio": -0.1}])
def test_impossible_plans_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TrafficPlan(**{"events": 1, **bad})


def _received(plan: TrafficPlan) -> list[datetime]:
    stamps = [e["requestReceivedTimestamp"] for e in _sent(plan) if e["stage"] == "RequestReceived"]
    return [datetime.fromisoformat(s) for s in stamps]


def test_unpaced_traffic_ends_now_and_paced_traffic_follows_the_clock() -> None:
    now = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    unpaced = _received(clocked_plan(1000, now=now))
    assert unpaced[-1] <= now and now - unpaced[-1] < timedelta(seconds=1)
    paced = _received(clocked_plan(1000, now=now, rate=100))  # 50 requests a second
    assert paced[0] > now and paced[-1] - paced[0] == timedelta(seconds=499 / 50)


def test_a_start_with_an_offset_is_stamped_in_utc() -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))
    sent = _sent(TrafficPlan(events=2, start=start, step=timedelta(seconds=1)))
    assert sent[0]["requestReceivedTimestamp"] == "2030-01-02T01:04:06.000000Z"
