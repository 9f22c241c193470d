"""Generated traffic tells a believable story: each object lives (create -> updates -> delete -> maybe created
again), and every answer is the one kube-apiserver would give in that state.

The checks read only the events (the way `history --diff` does), over 10k requests per seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from activity.devtools.loadgen.batches import TrafficPlan, items
from activity.devtools.loadgen.events import KINDS, EventGenerator, GeneratorSettings
from activity.devtools.up.demo import DemoTraffic

REQUESTS = 10_000

# The codes each verb can be answered with (403 and 500 can happen to any request).
CODES = {
    "get": {200, 404},
    "list": {200},
    "watch": {200},
    "create": {201, 409, 422},
    "update": {200, 404, 409, 422},
    "patch": {200, 404, 422},
    "delete": {200, 404},
}
ANY_REQUEST = {403, 500}


@dataclass
class Life:
    """What the events have told so far about one object."""

    exists: bool | None = None  # None: not known yet
    uid: str | None = None
    uids: set[str] = field(default_factory=set)
    resource_version: int = -1
    generation: int = 0
    spec: Any = None


def _pairs(seed: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    generator = EventGenerator(GeneratorSettings(seed=seed))
    for _ in range(REQUESTS):
        yield generator.request()


def _planned_pairs(*plans: TrafficPlan) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for plan in plans:
        events = iter(event for event, _ in items(plan))
        yield from zip(events, events, strict=True)


def _know(life: Life, exists: bool, where: str) -> None:
    assert life.exists in (None, exists), where
    life.exists = exists


def _check_state(life: Life, body: dict[str, Any], where: str) -> int:
    metadata = body["metadata"]
    uid, version = metadata["uid"], int(metadata["resourceVersion"])
    assert life.uid in (None, uid), f"{where}: the uid changed without a delete"
    life.uid = uid
    life.uids.add(uid)
    assert version > life.resource_version, f"{where}: resourceVersion went from {life.resource_version} to {version}"
    life.resource_version = version
    changed = body["spec"] != life.spec
    if life.spec is not None:
        # generation counts spec changes, as kube-apiserver's does
        assert metadata["generation"] == life.generation + changed, where
    life.generation, life.spec = metadata["generation"], body["spec"]
    return version


def _verify(pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]], seed: int) -> dict[str, int]:
    lives: dict[tuple[str, str, str], Life] = {}
    cluster_revision = 0
    seen = {"recreated": 0, "conflicts": 0, "not_found": 0, "deleted": 0}
    for first, done in pairs:
        assert (first["stage"], done["stage"]) == ("RequestReceived", "ResponseComplete")
        assert first["auditID"] == done["auditID"]
        verb, ref, code = done["verb"], done["objectRef"], done["responseStatus"]["code"]
        where = f"seed {seed} {done['auditID']} {verb} {ref} -> {code}"
        assert code in CODES[verb] | ANY_REQUEST, where
        if verb in ("list", "watch"):
            assert "name" not in ref, where
            continue
        life = lives.setdefault((ref["resource"], ref.get("namespace", ""), ref["name"]), Life())
        reason = done["responseStatus"].get("reason")
        if code == 404:
            seen["not_found"] += 1
            _know(life, False, where)
        elif code == 409 and verb == "create":
            assert reason == "AlreadyExists", where
            _know(life, True, where)
        elif code == 409:
            seen["conflicts"] += 1
            assert reason == "Conflict", where
            _know(life, True, where)
        elif code in (200, 201) and verb != "delete":
            _know(life, verb != "create", where)  # a create succeeds only where nothing exists
            life.exists = True
        elif code == 200:
            _know(life, True, where)
            life.exists, life.uid = False, None
            seen["deleted"] += 1
        response = done.get("responseObject")
        if response is None or code >= 400:
            continue
        if verb == "delete":
            assert response["kind"] == "Status" and response["status"] == "Success", where
            assert done["requestObject"]["kind"] == "DeleteOptions", where
            continue
        assert response["kind"] == KINDS[ref["resource"]], where
        assert response["metadata"]["name"] == ref["name"], where
        assert response["metadata"].get("namespace", "") == ref.get("namespace", ""), where
        request = done["requestObject"]
        if verb == "create":
            seen["recreated"] += bool(life.uids)
            assert response["metadata"]["uid"] not in life.uids, f"{where}: a re-created object reuses a uid"
            assert "uid" not in request["metadata"], where
            life.uid, life.spec, life.generation = None, None, 0
            assert response["metadata"]["generation"] == 1, where
        elif verb == "update":
            # the client sent the resourceVersion it read: the one the previous write left
            previous = life.resource_version
            assert previous < 0 or int(request["metadata"]["resourceVersion"]) == previous, where
        version = _check_state(life, response, where)
        assert version > cluster_revision, f"{where}: the cluster's resourceVersion went back"
        cluster_revision = version
    return seen


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32))
def test_ten_thousand_requests_tell_a_consistent_story(seed: int) -> None:
    seen = _verify(_pairs(seed), seed)
    # the story has every chapter: deletes, objects created again with a new uid, stale updates, missing objects
    assert all(count > 0 for count in seen.values()), seen


def test_the_demo_trickle_goes_on_from_the_burst() -> None:
    # Two plans, one cluster: the trickle never re-creates what the burst created, nor reuses its uids.
    demo = DemoTraffic.starting(datetime(2026, 12, 1, tzinfo=UTC), run=1)
    trickle = replace(demo.trickle, events=REQUESTS)
    seen = _verify(_planned_pairs(demo.burst, trickle), demo.burst.seed)
    assert seen["recreated"] > 0
    stamps = [first["requestReceivedTimestamp"] for first, _ in _planned_pairs(trickle)]
    assert stamps[0] == "2026-12-01T00:00:01.000000Z" and stamps == sorted(stamps)


def test_kinds_are_the_api_kinds() -> None:
    kinds = {
        e["responseObject"]["kind"]
        for e in EventGenerator(GeneratorSettings(seed=4)).events(4000)
        if e["stage"] == "ResponseComplete" and e["verb"] != "delete" and "responseObject" in e
    }
    assert "StatefulSet" in kinds and "ConfigMap" in kinds and "ClusterRole" in kinds
    assert kinds <= set(KINDS.values())
