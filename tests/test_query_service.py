"""The query service over the real embedded engine: pages, cursors, tenancy, dedupe and the spliced response.

One dataset per module (chdb hosts one engine path per process, and loading it once keeps the module fast):
generated events, timestamp twins and a redelivered fifth of the rows inserted again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from query_support import (
    PLATFORM,
    START,
    Clock,
    Stored,
    create_store,
    expected,
    generate,
    scoped_user,
    service,
    spliced,
    walk,
)

from apiserver.apis.activity.v1alpha1.types import QuerySpec
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.scope import ScopeUnresolved
from apiserver.registry.auditlogquery.service import QueryService
from apiserver.registry.auditlogquery.timerange import format_time, to_us
from auditlog.reading import Scope
from auditlog.storage import Store

TENANTS = [Scope("Organization", "acme"), Scope("Project", "acme-web"), Scope("User", "alice")]
LATER = START + timedelta(hours=1)  # after the whole dataset


@dataclass(frozen=True)
class Dataset:
    store: Store
    events: list[Stored]
    first_us: int
    last_us: int


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    events, again = generate()
    store = create_store(tmp_path_factory.mktemp("query") / "store", [s.raw for s in events], [s.raw for s in again])
    try:
        keys = [s.key[0] for s in events]
        yield Dataset(store, events, min(keys), max(keys))
    finally:
        store.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def field_errors(err: pytest.ExceptionInfo[InvalidQuery]) -> dict[str, str]:
    return {e.field: e.detail for e in err.value.errors}


def test_duplicates_really_are_stored(dataset: Dataset) -> None:
    """The dedupe tests below mean something only if the store holds copies."""
    lines = run(
        dataset.store.query_tsv("SELECT count(), uniqExact(timestamp, audit_id, stage, event_id) FROM events", {})
    )
    total, unique = map(int, lines[0].split(b"\t"))
    assert total > unique == len({s.key for s in dataset.events})


# CEL filters with the Python meaning they must have (the CEL translator's own tests prove the translation; here
# they show the filter is applied together with window, scope, dedupe and keyset).
FILTERS: list[tuple[str, Any]] = [
    ("", lambda e: True),
    ("verb == 'get'", lambda e: e.get("verb") == "get"),
    ("objectRef.resource == 'secrets'", lambda e: e.get("objectRef", {}).get("resource") == "secrets"),
    (
        "user.username.startsWith('system:serviceaccount:')",
        lambda e: e["user"]["username"].startswith("system:serviceaccount:"),
    ),
    (
        "responseStatus.code >= 400 && verb in ['delete', 'create']",
        lambda e: e.get("responseStatus", {}).get("code", 0) >= 400 and e["verb"] in ("delete", "create"),
    ),
]


@settings(max_examples=30, deadline=None)
@given(
    limit=st.integers(1, 150),
    start_offset_s=st.integers(-60, 1600),
    length_s=st.integers(1, 1700),
    offset_minutes=st.sampled_from([0, 120, -330]),
    scope=st.sampled_from([None, *TENANTS]),
    filter_index=st.integers(0, len(FILTERS) - 1),
)
def test_pages_concatenate_to_every_matching_event_once_newest_first(
    dataset: Dataset,
    limit: int,
    start_offset_s: int,
    length_s: int,
    offset_minutes: int,
    scope: Scope | None,
    filter_index: int,
) -> None:
    start = START + timedelta(seconds=start_offset_s)
    end = start + timedelta(seconds=length_s)
    zone = f"{'+' if offset_minutes >= 0 else '-'}{abs(offset_minutes) // 60:02}:{abs(offset_minutes) % 60:02}"
    shift = timedelta(minutes=offset_minutes)

    def written(t: Any) -> str:  # the same instant, written with another UTC offset
        return (t + shift).strftime("%Y-%m-%dT%H:%M:%S") + zone

    source, keep = FILTERS[filter_index]
    user = PLATFORM if scope is None else scoped_user(scope.type, scope.name)
    svc = service(dataset.store, Clock(LATER))
    pages = run(walk(svc, QuerySpec(written(start), written(end), source, limit), user))

    want = expected(dataset.events, to_us(start), to_us(end), scope, keep)
    assert len(pages) == max(1, -(-len(want) // limit))
    for number, page in enumerate(pages):
        # byte-exact: the stored rows spliced, in keyset order, limit per page, no row twice
        assert page.results_json == spliced(want[number * limit : (number + 1) * limit])
        assert page.count == len(want[number * limit : (number + 1) * limit])
        assert (page.effective_start_time, page.effective_end_time) == (
            format_time(to_us(start)),
            format_time(to_us(end)),
        )
    assert [bool(p.continue_token) for p in pages] == [True] * (len(pages) - 1) + [False]


def test_default_limit_is_100(dataset: Dataset) -> None:
    page = run(service(dataset.store, Clock(LATER)).execute(QuerySpec("now-2h", "now"), PLATFORM))
    assert page.count == 100 and len(orjson.loads(page.results_json)) == 100 and page.continue_token


def test_empty_times_mean_the_defaults_last_24_hours(dataset: Dataset) -> None:
    page = run(service(dataset.store, Clock(LATER)).execute(QuerySpec("", "", "", 5), PLATFORM))
    assert (page.effective_start_time, page.effective_end_time) == (
        format_time(to_us(LATER - timedelta(hours=24))),
        format_time(to_us(LATER)),
    )


def test_relative_window_is_frozen_across_pages(dataset: Dataset) -> None:
    """Page 1 resolves now-10m against the clock; later pages reuse that window while the clock moves on."""
    clock = Clock(START + timedelta(minutes=20))
    svc = service(dataset.store, clock)
    spec = QuerySpec("now-10m", "now", "", 40)
    first = run(svc.execute(spec, PLATFORM))
    pages = [first]
    while pages[-1].continue_token:
        clock.now += timedelta(minutes=3)  # a drifting window would lose the oldest events and gain newer ones
        pages.append(run(svc.execute(replace(spec, continue_token=pages[-1].continue_token), PLATFORM)))
    start_us, end_us = to_us(START + timedelta(minutes=10)), to_us(START + timedelta(minutes=20))
    assert b"".join(p.results_json[1:-1] + b"," for p in pages if p.count) == b"".join(
        r + b"," for r in expected(dataset.events, start_us, end_us)
    )
    assert len(pages) > 2
    assert {(p.effective_start_time, p.effective_end_time) for p in pages} == {
        (format_time(start_us), format_time(end_us))
    }


def _page_one(svc: QueryService, spec: QuerySpec, user: Any = PLATFORM) -> str:
    token = run(svc.execute(spec, user)).continue_token
    assert token
    return str(token)


def _continue_error(svc: QueryService, spec: QuerySpec, user: Any = PLATFORM) -> str:
    with pytest.raises(InvalidQuery) as err:
        run(svc.execute(spec, user))
    errors = field_errors(err)
    assert list(errors) == ["spec.continue"]
    return errors["spec.continue"]


SPEC = QuerySpec("2026-11-28T09:00:00Z", "2026-11-28T09:30:00Z", "", 25)


def test_every_single_character_change_to_a_token_is_refused(dataset: Dataset) -> None:
    svc = service(dataset.store, Clock(LATER))
    token = _page_one(svc, SPEC)
    for i, char in enumerate(token):
        flipped = token[:i] + ("A" if char != "A" else "B") + token[i + 1 :]
        detail = _continue_error(svc, replace(SPEC, continue_token=flipped))
        assert "altered" in detail or "not a continue token" in detail


def test_token_signed_with_another_key_is_refused(dataset: Dataset) -> None:
    token = _page_one(service(dataset.store, Clock(LATER), key=b"another-key-of-another-server!!"), SPEC)
    detail = _continue_error(service(dataset.store, Clock(LATER)), replace(SPEC, continue_token=token))
    assert "signature does not match" in detail


def test_token_expires_after_an_hour(dataset: Dataset) -> None:
    clock = Clock(LATER)
    svc = service(dataset.store, clock)
    token = _page_one(svc, SPEC)
    clock.now = LATER + timedelta(minutes=59)
    assert run(svc.execute(replace(SPEC, continue_token=token), PLATFORM)).count == 25
    clock.now = LATER + timedelta(hours=1)
    assert "expired at 2026-11-28T11:00:00" in _continue_error(svc, replace(SPEC, continue_token=token))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"limit": 26}, "spec.limit"),
        ({"limit": None}, "spec.limit"),
        ({"filter": "verb == 'get'"}, "spec.filter"),
        ({"start_time": "2026-11-28T09:00:00.000001Z"}, "spec.startTime/spec.endTime"),
        ({"end_time": "2026-11-28T10:30:00+01:00"}, "spec.startTime/spec.endTime"),  # same instant, other text
    ],
)
def test_token_of_another_query_is_refused(dataset: Dataset, change: dict[str, Any], named: str) -> None:
    svc = service(dataset.store, Clock(LATER))
    token = _page_one(svc, SPEC)
    detail = _continue_error(svc, replace(SPEC, continue_token=token, **change))
    assert f"different {named}" in detail


@pytest.mark.parametrize(
    ("issued_to", "used_by"),
    [
        (Scope("Organization", "acme"), Scope("Organization", "globex")),
        (Scope("Organization", "acme"), Scope("Project", "acme")),
        (None, Scope("Organization", "acme")),  # a platform cursor must not widen a tenant's view
        (Scope("Organization", "acme"), None),
    ],
)
def test_token_of_another_scope_is_refused(dataset: Dataset, issued_to: Scope | None, used_by: Scope | None) -> None:
    svc = service(dataset.store, Clock(LATER))
    spec = replace(SPEC, limit=5)

    def user(scope: Scope | None) -> Any:
        return PLATFORM if scope is None else scoped_user(scope.type, scope.name)

    token = _page_one(svc, spec, user(issued_to))
    detail = _continue_error(svc, replace(spec, continue_token=token), user(used_by))
    assert "another tenant scope" in detail
    assert "acme" not in detail and "globex" not in detail  # never name the other tenant


@pytest.mark.parametrize("source", ["", "user.username == 'alice@example.com'"])
def test_scoped_caller_sees_only_its_tenant(dataset: Dataset, source: str) -> None:
    scope = Scope("Organization", "globex")
    svc = service(dataset.store, Clock(LATER))
    pages = run(walk(svc, QuerySpec("now-2h", "now", source, 1000), scoped_user(scope.type, scope.name)))
    seen = [e for p in pages for e in orjson.loads(p.results_json)]
    assert seen, "the dataset has events of this tenant"
    assert {
        (e["annotations"]["platform.miloapis.com/scope.type"], e["annotations"]["platform.miloapis.com/scope.name"])
        for e in seen
    } == {("Organization", "globex")}


def test_a_filter_asking_for_other_tenants_finds_nothing_for_a_scoped_caller(dataset: Dataset) -> None:
    spec = QuerySpec("now-2h", "now", "annotations['platform.miloapis.com/scope.name'] == 'acme'", 1000)
    svc = service(dataset.store, Clock(LATER))
    assert run(svc.execute(spec, PLATFORM)).count > 0  # the filter does select events...
    assert run(svc.execute(spec, scoped_user("Organization", "globex"))).results_json == b"[]"  # ...not for globex


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_limit_out_of_range_is_refused(dataset: Dataset, limit: int) -> None:
    with pytest.raises(InvalidQuery) as err:
        run(service(dataset.store, Clock(LATER)).execute(QuerySpec(limit=limit), PLATFORM))
    assert field_errors(err) == {"spec.limit": "must be between 1 and 1000 (omit it for 100)"}


def test_all_spec_errors_are_reported_together(dataset: Dataset) -> None:
    with pytest.raises(InvalidQuery) as err:
        run(service(dataset.store, Clock(LATER)).execute(QuerySpec("yesterday", "now", "", 5000), PLATFORM))
    assert set(field_errors(err)) == {"spec.limit", "spec.startTime"}


def test_window_over_the_maximum_says_how_to_split(dataset: Dataset) -> None:
    with pytest.raises(InvalidQuery) as err:
        run(
            service(dataset.store, Clock(LATER)).execute(
                QuerySpec("2026-10-01T00:00:00Z", "2026-11-15T00:00:00Z"), PLATFORM
            )
        )
    assert field_errors(err) == {
        "spec.startTime": "the window [2026-10-01T00:00:00.000000Z, 2026-11-15T00:00:00.000000Z) is 45d; the maximum "
        "is 30d: query [2026-10-01T00:00:00.000000Z, 2026-10-31T00:00:00.000000Z) and "
        "[2026-10-31T00:00:00.000000Z, 2026-11-15T00:00:00.000000Z) separately"
    }


def test_unusable_scope_extras_are_refused_not_widened(dataset: Dataset) -> None:
    with pytest.raises(ScopeUnresolved, match="must be one of Organization, Project, User"):
        run(service(dataset.store, Clock(LATER)).execute(QuerySpec(), scoped_user("Team", "acme")))
