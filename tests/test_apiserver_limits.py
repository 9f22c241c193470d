"""The store's limits as a running API server (real HTTPS, real chdb engine) applies them: a page over the memory
limit is the caller's to narrow (422, not a retriable 503), a statement stops in the engine at its request's
deadline, and readiness answers from its own lane while every query worker is busy."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from apiserver_support import ApiServerEnv, generated_events, running_apiserver

from apiserver.apis.activity.v1alpha1.types import QuerySpec
from apiserver.machinery.request import UserInfo
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.service import QueryService, QueryTimedOut
from apiserver.registry.auditlogquery.settings import QuerySettings
from auditlog.reading import PageQuery, ReadLimits, read_page
from auditlog.refusals import Refusal, refusal
from auditlog.storage import Store, StoreError


@pytest.fixture
def small_memory_server(tmp_path: Path, store_dsn: str) -> Iterator[ApiServerEnv]:
    """A server whose queries may use 8 MiB in the store, over events of ~200 KB each."""
    settings = QuerySettings(cursor_key=b"k" * 32, max_query_memory_bytes=8 * 1024**2)
    with running_apiserver(tmp_path, store_dsn, query=settings) as env:
        events = generated_events(60)
        for event in events:
            event.setdefault("annotations", {})["padding"] = "p" * 200_000
        env.insert_events(events)
        yield env


def test_a_page_over_the_memory_limit_is_a_422_telling_to_narrow(small_memory_server: ApiServerEnv) -> None:
    """MEMORY_LIMIT_EXCEEDED is the query's doing: retrying it unchanged fails the same, so not a retriable 503."""
    answer = small_memory_server.create({"limit": 100, "filter": "verb != ''"})
    assert answer.status == 422, answer.body[:500]
    status = answer.json()
    assert status["reason"] == "Invalid" and "Retry-After" not in answer.headers
    [cause] = status["details"]["causes"]
    assert cause["field"] == "spec.filter"
    assert "this query needs more than the 8 MiB of memory a query may use" in cause["message"]
    assert "narrow the window (spec.startTime, spec.endTime)" in cause["message"]
    # without a filter the cause names the window; a query reading only the small key columns is served
    unfiltered = small_memory_server.create({"limit": 1}).json()["details"]["causes"][0]
    assert (unfiltered["field"], unfiltered["message"].split(":")[0]) == ("spec.startTime", "Invalid value")
    assert small_memory_server.create({"filter": "verb == 'no such verb'"}).status == 201


# --- readiness under load ----------------------------------------------------------------------------------------

SLOW_STATEMENT = (
    "SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) % 7 = 3 "
    "SETTINGS max_execution_time = 10, timeout_overflow_mode = 'break'"
)


def test_readiness_stays_true_while_every_query_worker_is_busy(tmp_path: Path, store_dsn: str) -> None:
    """Slow statements fill the query workers (and more wait for one); /readyz still answers 200 within its
    check timeout, because the store ping has its own lane. Before, 6 of 6 probes failed."""
    with running_apiserver(tmp_path, store_dsn, store_workers=2) as env:
        store = env.handle.store

        async def occupy() -> None:
            await store.run(lambda client: client.command(SLOW_STATEMENT))

        # two running, two waiting for a worker (as behind a burst of queries)
        busy = [asyncio.run_coroutine_threadsafe(occupy(), env.loop.loop) for _ in range(4)]
        try:
            time.sleep(1.0)
            assert not any(f.done() for f in busy)  # the workers are taken
            for _ in range(3):
                answer = env.request("GET", "/readyz?verbose")
                assert answer.status == 200, answer.body.decode()
                assert "[+]storage ok" in answer.body.decode().splitlines()
            assert not all(f.done() for f in busy)  # and were still taken while readiness answered
        finally:
            for future in busy:
                future.cancel()  # the waiting ones never start; the running ones end at their max_execution_time


# --- a statement ends with its request ---------------------------------------------------------------------------

# A statement that runs for minutes, in small blocks (the engine checks its limits between blocks).
ENDLESS_CONDITION = "(SELECT count() FROM numbers(1000000000000) WHERE sipHash64(number) % 7 = 3) > 0"


async def _running_statements(store: Store) -> int:
    lines = await store.query_tsv(
        "SELECT count() FROM system.processes WHERE query LIKE '%sipHash64(number)%' AND query NOT LIKE '%system.%'",
        {},
    )
    return int(lines[0])


async def test_an_abandoned_statement_stops_in_the_engine_at_its_deadline(store: Store) -> None:
    """The request's deadline travels with each statement (max_execution_time): when the request is answered 504
    and abandoned, the engine stops the work instead of running it on for nobody in a worker thread."""
    query = PageQuery(start_us=0, end_us=2**62, limit=10, where=ENDLESS_CONDITION)
    deadline = time.monotonic() + 1.0
    with pytest.raises(TimeoutError):  # what the request timeout does to the handler
        await asyncio.wait_for(read_page(store, query, limits=ReadLimits(deadline=deadline)), 1.0)
    while await _running_statements(store):  # unbounded, the statement runs for many minutes
        assert time.monotonic() - deadline < 30, "the abandoned statement is still running"
        await asyncio.sleep(0.2)
    with pytest.raises(StoreError) as caught:  # awaited to the end, the failure says which limit stopped it
        await read_page(store, query, limits=ReadLimits(deadline=time.monotonic() + 0.5))
    assert refusal(caught.value) is Refusal.TIME


async def test_memory_and_rows_limits_reach_the_engine(store: Store) -> None:
    await store.insert_events([orjson.dumps(e) for e in generated_events(50)])
    query = PageQuery(start_us=0, end_us=2**62, limit=10)
    assert len((await read_page(store, query, limits=ReadLimits(max_rows_to_read=1000))).events) == 10
    with pytest.raises(StoreError) as caught:
        await read_page(store, query, limits=ReadLimits(max_rows_to_read=10))
    assert refusal(caught.value) is Refusal.ROWS
    heavy = PageQuery(
        start_us=0, end_us=2**62, limit=10, where="length(arrayMap(x -> toString(x), range(50000000))) > 0"
    )
    with pytest.raises(StoreError) as caught:
        await read_page(store, heavy, limits=ReadLimits(max_memory_bytes=16 * 1024**2))
    assert refusal(caught.value) is Refusal.MEMORY


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DatabaseError: Code: 241. DB::Exception: Query memory limit exceeded: would use 117.12 MiB", Refusal.MEMORY),
        ("DatabaseError: Code: 241. DB::Exception: (total) memory limit exceeded: would use 31.2 GiB", None),
        ("DatabaseError: Code: 158. DB::Exception: Limit for rows (max_rows_to_read) exceeded", Refusal.ROWS),
        ("DatabaseError: Code: 159. DB::Exception: Timeout exceeded: elapsed 1004 ms", Refusal.TIME),
        ("OperationalError: Error HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded", None),
        ("DatabaseError: Code: 252. DB::Exception: Too many partitions for single INSERT block", None),
    ],
)
def test_limit_refusals_are_told_apart_from_outages(text: str, expected: Refusal | None) -> None:
    assert refusal(StoreError(text)) is expected


async def test_a_query_over_the_rows_limit_is_invalid_naming_the_window(store: Store) -> None:
    await store.insert_events([orjson.dumps(e) for e in generated_events(50)])
    service = QueryService(store, QuerySettings(cursor_key=b"k" * 32, max_query_rows=10))
    with pytest.raises(InvalidQuery) as caught:
        await service.execute(QuerySpec(limit=5), UserInfo("admin"))
    [error] = caught.value.errors
    assert (error.field, error.value) == ("spec.startTime", "now-24h")
    assert error.detail == (
        "this query needs to read more than the 10 rows a query may read: narrow the window "
        "(spec.startTime, spec.endTime) or make spec.filter more selective"
    )
    roomy = QueryService(store, QuerySettings(cursor_key=b"k" * 32, max_query_rows=10_000))
    assert (await roomy.execute(QuerySpec(limit=5), UserInfo("admin"))).count == 5


async def test_a_query_past_its_deadline_times_out_in_the_store(store: Store) -> None:
    """The budget each statement gets is what is left of the request's: none left, the store refuses at once
    (a timeout, not a store outage)."""
    await store.insert_events([orjson.dumps(e) for e in generated_events(5)])
    service = QueryService(store, QuerySettings(cursor_key=b"k" * 32))
    with pytest.raises(QueryTimedOut):
        await service.execute(QuerySpec(limit=5), UserInfo("admin"), deadline=time.monotonic() - 1)
    assert (await service.execute(QuerySpec(limit=5), UserInfo("admin"), deadline=time.monotonic() + 30)).count == 5
