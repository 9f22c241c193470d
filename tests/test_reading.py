"""The read helper: keyset pages, newest first, every stored event exactly once even when stored twice."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog.events import parse_timestamp
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION
from auditlog.reading import PageQuery, Position, Scope, read_page
from auditlog.storage import Store

WINDOW = (0, 2**62)


def _micros(stamp: str) -> int:
    t = parse_timestamp(stamp)
    return int(t.timestamp()) * 1_000_000 + t.microsecond


async def _all_pages(store: Store, query: PageQuery) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    while True:
        page = await read_page(store, query)
        seen += [orjson.loads(row) for row in page.events]
        if page.next_after is None:
            return seen
        # Each page must end strictly older than the last: a repeating page would otherwise loop forever.
        assert query.after is None or _position(page.next_after) < _position(query.after)
        query = PageQuery(**{**query.__dict__, "after": page.next_after})


def _position(p: Position) -> tuple[int, str, str, bytes]:
    return (p.timestamp_us, p.audit_id, p.stage, bytes.fromhex(p.event_id))


async def _seed(store: Store, requests: int, *, twice: bool) -> list[dict[str, object]]:
    events = list(EventGenerator(GeneratorSettings(seed=7)).events(requests))
    rows = [orjson.dumps(e) for e in events]
    await store.insert_events(rows)
    if twice:  # a redelivered batch: the same rows again, in another insert (another part)
        await store.insert_events(rows)
    return events


def _key(event: dict[str, object]) -> tuple[int, str, str]:
    return (_micros(str(event["stageTimestamp"])), str(event["auditID"]), str(event["stage"]))


async def test_pages_cover_every_event_once_newest_first_despite_duplicates(store: Store) -> None:
    events = await _seed(store, 150, twice=True)
    seen = await _all_pages(store, PageQuery(*WINDOW, limit=17))
    assert len(seen) == len(events)
    assert sorted(map(_key, seen)) == sorted(map(_key, events))
    keys = [_key(e) for e in seen]
    assert keys == sorted(keys, reverse=True)


async def test_event_json_comes_back_byte_identical(store: Store) -> None:
    event = {
        "auditID": "tab\there",
        "stage": "ResponseComplete",
        "stageTimestamp": "2026-11-28T10:00:00.000001Z",
        "user": {"username": 'zoë "quoted" \\ back'},
        "verb": "get",
    }
    raw = orjson.dumps(event)
    await store.insert_events([raw])
    page = await read_page(store, PageQuery(*WINDOW, limit=5))
    assert page.events == (raw,)


async def test_scope_limits_rows_to_one_tenant(store: Store) -> None:
    events = await _seed(store, 120, twice=False)
    scope = Scope("Project", "acme-web")
    seen = await _all_pages(store, PageQuery(*WINDOW, limit=50, scope=scope))
    expected = [
        e
        for e in events
        if (e.get("annotations") or {}).get(SCOPE_TYPE_ANNOTATION) == scope.type  # type: ignore[union-attr]
        and e["annotations"].get(SCOPE_NAME_ANNOTATION) == scope.name
    ]  # type: ignore[index]
    assert expected, "the generator should produce events for this tenant"
    assert sorted(map(_key, seen)) == sorted(map(_key, expected))


async def test_where_and_window_bounds(store: Store) -> None:
    events = await _seed(store, 100, twice=False)
    stamps = sorted(_micros(str(e["stageTimestamp"])) for e in events)
    start, end = stamps[10], stamps[60]
    seen = await _all_pages(
        store, PageQuery(start, end, limit=1000, where="verb = {f_0:String}", params={"f_0": "get"})
    )
    expected = [e for e in events if start <= _micros(str(e["stageTimestamp"])) < end and e["verb"] == "get"]
    assert sorted(map(_key, seen)) == sorted(map(_key, expected))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(limit=st.integers(min_value=1, max_value=60))
async def test_any_page_size_yields_the_same_sequence(store: Store, limit: int) -> None:
    if not await store.query_tsv("SELECT 1 FROM events LIMIT 1", {}):
        await _seed(store, 40, twice=True)
    whole = await _all_pages(store, PageQuery(*WINDOW, limit=1000))
    paged = await _all_pages(store, PageQuery(*WINDOW, limit=limit))
    assert [_key(e) for e in paged] == [_key(e) for e in whole]


_examples = itertools.count()


def _stamp(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _order(raw: bytes) -> tuple[int, str, str, bytes]:
    """The keyset order: (timestamp, auditID, stage, identity), identity being the SHA-256 prefix the store keeps."""
    event = orjson.loads(raw)
    return (*_key(event), hashlib.sha256(raw).digest()[:16])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # per key: how many different events share it (a reused Audit-ID), and how many extra copies each has
    keys=st.lists(st.tuples(st.integers(1, 4), st.integers(0, 2)), min_size=1, max_size=6),
    limit=st.integers(1, 7),
    tenant=st.sampled_from([None, Scope("Project", "p")]),
    inserts=st.integers(1, 3),
    data=st.data(),
)
async def test_events_sharing_timestamp_auditid_and_stage_are_paged_without_gaps_or_repeats(
    store: Store,
    keys: list[tuple[int, int]],
    limit: int,
    tenant: Scope | None,
    inserts: int,
    data: st.DataObject,
) -> None:
    # Each example gets an hour of its own, so the examples sharing the store do not see each other's rows.
    base_us = (1_800_000_000 + 3600 * next(_examples)) * 1_000_000
    annotations = {SCOPE_TYPE_ANNOTATION: "Project", SCOPE_NAME_ANNOTATION: "p"}
    rows: list[bytes] = []
    for k, (variants, copies) in enumerate(keys):
        for v in range(variants):
            event = {
                "auditID": f"id-{k % 2}",  # keys 0 and 2 share the auditID, and (k // 2) also the microsecond
                "stage": "ResponseComplete",
                "stageTimestamp": _stamp(base_us + k // 2),
                "verb": ["get", "delete", "patch", "list"][v],
                "annotations": annotations,
            }
            rows += [orjson.dumps(event)] * (1 + copies)
    rows = data.draw(st.permutations(rows))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(rows)), min_size=inserts - 1, max_size=inserts - 1)))
    for batch in (rows[a:b] for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True)):
        if batch:
            await store.insert_events(batch)
    window = (base_us, base_us + 3600 * 1_000_000)
    paged = await _all_pages(store, PageQuery(*window, limit=limit, scope=tenant))
    assert [orjson.dumps(e) for e in paged] == sorted(set(rows), key=_order, reverse=True)
