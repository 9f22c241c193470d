"""`activity bench query`: AuditLogQuery through the real API server vs the same SQL run directly, same data.

One process hosts the embedded engine, the API server and the client; the history grows in place and each
(page size, filter) pair is measured as alternating API/raw requests (the raw side runs the service's own page
SQL on a direct client). Targets and results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from activity.devtools.bench.dataset import History, anchor_for, grow, prepare_pool, settle
from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.authorize import Mode
from apiserver.machinery.certs import CertificateAuthority
from apiserver.registry.auditlogquery.filter import compile_filter
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.auditlogquery.timerange import format_duration, format_time
from apiserver.server.apiserver import start_apiserver
from apiserver.server.options import ApiServerSettings
from auditlog.config import parse_store_dsn
from auditlog.durations import parse_timedelta
from auditlog.reading import PageQuery, read_page_sync
from auditlog.schema import migrate
from auditlog.storage import Store

PATH = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"
PAGE_SIZES = (100, 1000)
RATIO_TARGETS = {100: 1.25, 1000: 1.5}
SCALE_TARGET = 2.0
# name -> CEL filter: everything, a common verb, a prefix over many users, and a rare combination (~0.1%).
FILTERS = {
    "none": "",
    "verb": "verb == 'delete'",
    "prefix": "user.username.startsWith('system:serviceaccount:')",
    "rare": "verb == 'delete' && objectRef.namespace == 'team-a' && responseStatus.code >= 400",
}


@dataclass(frozen=True)
class QueryBench:
    sizes: tuple[int, ...] = (1_000_000, 10_000_000)
    events_per_second: int = 100  # history density: a 1h window holds 360k events
    window: timedelta = timedelta(hours=1)
    iterations: int = 30
    concurrency: int = 8
    concurrent_requests: int = 400


QUICK = QueryBench(sizes=(4_000, 8_000), events_per_second=2, iterations=2, concurrency=2, concurrent_requests=4)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Case:
    size: int
    limit: int
    filter_name: str
    raw: tuple[float, ...]  # seconds
    api: tuple[float, ...]

    @property
    def ratio(self) -> float:
        return statistics.median(self.api) / statistics.median(self.raw)

    @property
    def overhead(self) -> float:
        """Median of the paired differences: what the API path adds, robust to load shifting between pairs."""
        return statistics.median(a - r for a, r in zip(self.api, self.raw, strict=True))


class Client:
    """POSTs AuditLogQuery objects over one keep-alive TLS connection pool, as kubectl would."""

    def __init__(self, port: int, ssl_context: ssl.SSLContext, concurrency: int) -> None:
        self._url = f"https://127.0.0.1:{port}{PATH}"
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context, limit=concurrency))

    async def create(self, spec: dict[str, Any]) -> bytes:
        body = orjson.dumps({"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec})
        headers = {"Content-Type": "application/json"}
        async with self._session.post(self._url, data=body, headers=headers) as answer:
            data = await answer.read()
            if answer.status != 201:
                raise RuntimeError(f"POST answered {answer.status}: {data[:300]!r}")
            return data

    async def close(self) -> None:
        await self._session.close()


class RawReader:
    """The read path's SQL on direct clients of the same engine, no asyncio, HTTP, auth, CEL or cursor: the
    ceiling the API path is compared with."""

    def __init__(self, store: Store, window: tuple[int, int]) -> None:
        self._store = store
        self._window = window

    def query(self, limit: int, cel: str) -> PageQuery:
        compiled = compile_filter(cel)
        return PageQuery(*self._window, limit=limit, where=compiled.where, params=compiled.params)

    def read(self, query: PageQuery) -> int:
        return len(read_page_sync(self._store.client(), query).events)


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


async def measure_case(
    client: Client, raw: RawReader, size: int, limit: int, name: str, spec: dict[str, Any], iterations: int
) -> Case:
    query = raw.query(limit, spec["filter"])
    loop = asyncio.get_running_loop()
    raw_times: list[float] = []
    api_times: list[float] = []
    for i in range(iterations + 2):  # two warm-up pairs; pairs alternate so both sides see the same background load
        started = time.perf_counter()
        await loop.run_in_executor(None, raw.read, query)
        raw_took = time.perf_counter() - started
        api_took = await timed(lambda: client.create(spec))
        if i >= 2:
            raw_times.append(raw_took)
            api_times.append(api_took)
    return Case(size, limit, name, tuple(raw_times), tuple(api_times))


async def throughput(
    client: Client, raw: RawReader, spec: dict[str, Any], concurrency: int, requests: int
) -> tuple[float, float]:
    """Requests per second with `concurrency` callers, through the API and raw (one thread per caller)."""
    started = time.perf_counter()
    remaining = iter(range(requests))

    async def caller() -> None:
        for _ in remaining:
            await client.create(spec)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    api_rate = requests / (time.perf_counter() - started)

    query = raw.query(spec["limit"], spec["filter"])
    with ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        list(pool.map(lambda _: raw.read(query), range(requests)))
        raw_rate = requests / (time.perf_counter() - started)
    return api_rate, raw_rate


def _tls(directory: Path) -> tuple[CertificateAuthority, Path, Path, ssl.SSLContext]:
    ca = CertificateAuthority("activity-bench-ca")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    cert, key = ca.issue_serving(["localhost", "127.0.0.1"]).write(directory, "serving")
    client_cert, client_key = ca.issue_client("bench", ["system:masters"]).write(directory, "client")
    context = ssl.create_default_context(cafile=str(directory / "ca.crt"))
    context.load_cert_chain(client_cert, client_key)
    return ca, cert, key, context


def _table(cases: list[Case]) -> list[str]:
    lines = [
        "| events | rows/page | filter | raw p50 ms | raw p95 ms | API p50 ms | API p95 ms | API minus raw ms | "
        "API/raw p50 | target |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in cases:
        target = RATIO_TARGETS[c.limit]
        lines.append(
            f"| {c.size:,} | {c.limit} | {c.filter_name} | {statistics.median(c.raw) * 1e3:.1f} | "
            f"{percentile(list(c.raw), 0.95) * 1e3:.1f} | {statistics.median(c.api) * 1e3:.1f} | "
            f"{percentile(list(c.api), 0.95) * 1e3:.1f} | {c.overhead * 1e3:.1f} | {c.ratio:.2f} | "
            f"≤ {target} {_mark(c.ratio <= target)} |"
        )
    return lines


def _scaling(cases: list[Case], sizes: tuple[int, ...]) -> list[str]:
    small, big = sizes[0], sizes[-1]
    by_key = {(c.size, c.limit, c.filter_name): c for c in cases}
    lines = [
        f"| rows/page | filter | API p50 at {small:,} ms | API p50 at {big:,} ms | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for limit in PAGE_SIZES:
        for name in FILTERS:
            a = statistics.median(by_key[(small, limit, name)].api)
            b = statistics.median(by_key[(big, limit, name)].api)
            lines.append(
                f"| {limit} | {name} | {a * 1e3:.1f} | {b * 1e3:.1f} | {b / a:.2f} | "
                f"≤ {SCALE_TARGET} {_mark(b / a <= SCALE_TARGET)} |"
            )
    return lines


def _spec(window: tuple[int, int], cel: str, limit: int) -> dict[str, Any]:
    return {"startTime": format_time(window[0]), "endTime": format_time(window[1]), "filter": cel, "limit": limit}


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


async def bench_query(bench: QueryBench, directory: Path, say: Callable[[str], None]) -> list[str]:
    dsn = f"chdb://{directory / 'store'}"
    migrate(parse_store_dsn(dsn), retention_days=0)  # a throwaway store: no TTL merges during the measurement
    _, cert, key, client_context = _tls(directory)
    store = Store(parse_store_dsn(dsn), workers=bench.concurrency)
    settings = ApiServerSettings(
        query=QuerySettings(cursor_key=os.urandom(32)),
        auth=AuthSettings(client_ca_file=directory / "ca.crt", authorization_mode=Mode.ALWAYS_ALLOW),
        bind_address="127.0.0.1",
        secure_port=0,
        tls_cert_file=cert,
        tls_private_key_file=key,
    )
    handle = await start_apiserver(settings, parse_store_dsn(dsn))
    client = Client(handle.port, client_context, bench.concurrency)
    history = History(anchor_for(datetime.now(UTC)), bench.events_per_second)
    end_us = history.anchor_us + 1_000_000  # the newest event's stages finish within a second of the anchor
    window = (end_us - bench.window // timedelta(microseconds=1), end_us)
    raw = RawReader(store, window)
    cases: list[Case] = []
    lines: list[str] = []
    try:
        await prepare_pool(store)
        have = 0
        for size in bench.sizes:
            started = time.perf_counter()
            await grow(store, history, have, size)
            have = size
            stored_s = time.perf_counter() - started
            parts = await settle(store)
            settled_s = time.perf_counter() - started - stored_s
            say(f"{size:,} events stored in {stored_s:.0f} s, merged in {settled_s:.0f} s to {parts} parts; measuring")
            for limit in PAGE_SIZES:
                for name, cel in FILTERS.items():
                    spec = _spec(window, cel, limit)
                    cases.append(await measure_case(client, raw, size, limit, name, spec, bench.iterations))
                    say(_table(cases[-1:])[-1])
            spec = _spec(window, "", PAGE_SIZES[0])
            api_rate, raw_rate = await throughput(client, raw, spec, bench.concurrency, bench.concurrent_requests)
            lines.append(
                f"| {size:,} | {bench.concurrency} | {api_rate:.1f} | {raw_rate:.1f} | {api_rate / raw_rate:.2f} |"
            )
        span = format_duration(timedelta(seconds=bench.sizes[-1] / bench.events_per_second))
        header = [
            f"History: {bench.events_per_second} events/s ending now ({span} for {bench.sizes[-1]:,} events), 1% "
            f"stored twice; window: the newest {format_duration(bench.window)}; {bench.iterations} alternating "
            f"request pairs per row; load average {os.getloadavg()[0]:.1f}.",
            "",
        ]
        concurrency = [
            "",
            "| events | concurrent callers | API req/s | raw req/s | API/raw |",
            "| --- | --- | --- | --- | --- |",
            *lines,
        ]
        scaling = ["", *_scaling(cases, bench.sizes)] if len(bench.sizes) > 1 else []
        return [*header, *_table(cases), *concurrency, *scaling]
    finally:
        await client.close()
        await handle.stop()
        store.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = QueryBench()
    parser.add_argument(
        "--events", type=int, nargs="+", default=list(d.sizes), help="history sizes, ascending (grown in place)"
    )
    parser.add_argument("--events-per-second", type=int, default=d.events_per_second, help="history density")
    parser.add_argument("--window", default=format_duration(d.window), help="queried window: the newest <n><unit>")
    parser.add_argument("--iterations", type=int, default=d.iterations, help="request pairs per measured row")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="callers for the req/s rows")
    parser.add_argument("--concurrent-requests", type=int, default=d.concurrent_requests, help="requests per req/s row")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every row")


def run(args: argparse.Namespace) -> int:
    try:
        bench = (
            QUICK
            if args.quick
            else QueryBench(
                sizes=tuple(args.events),
                events_per_second=args.events_per_second,
                window=parse_timedelta(args.window, days=True),
                iterations=args.iterations,
                concurrency=args.concurrency,
                concurrent_requests=args.concurrent_requests,
            )
        )
    except ValueError as err:
        print(f"error: --window: {err}", file=sys.stderr)
        return 2
    if list(bench.sizes) != sorted(set(bench.sizes)) or min(bench.sizes) < 2 or bench.events_per_second < 1:
        print("error: --events must be ascending distinct sizes ≥ 2; --events-per-second ≥ 1", file=sys.stderr)
        return 2
    if min(bench.iterations, bench.concurrency, bench.concurrent_requests) < 1:
        print("error: --iterations, --concurrency and --concurrent-requests must be positive", file=sys.stderr)
        return 2

    def say(line: str) -> None:
        print(line, flush=True)

    with tempfile.TemporaryDirectory(prefix="activity-bench-query-") as scratch:
        report = asyncio.run(bench_query(bench, Path(scratch), say))
    print("\n## Query\n")
    print("\n".join(report))
    return 0
