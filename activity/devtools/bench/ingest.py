"""`activity bench ingest`: our webhook and consumer against the raw JetStream and insert ceilings, on the same
generated events, plus the consumer's memory with a backlog while the store is down.

Each measured part runs in a fresh process (bench.ingest_parts) so none inherits another's threads or caches; this
process prepares, starts the programs and prints the table. Targets and results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import nats
import orjson
import psutil

from activity.devtools.bench.ingest_parts import SUBJECT, Measured, PartConfig, message_ids
from activity.devtools.bench.processes import (
    RssTrace,
    load_average,
    metric_value,
    sample_rss,
    start_activity,
    stop,
    wait_http_ok,
)
from activity.devtools.bench.raw import publish_pipelined
from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.natsd import NatsServer, find_binary, free_port
from ingest.consumer.settings import DEFAULT_BATCH_EVENTS
from ingest.jetstream import DURABLE, STREAM, StreamSettings, ensure_stream

MB = 1024 * 1024
WEBHOOK_TARGET = 0.70
CONSUMER_TARGET = 0.75
RSS_LIMIT = 300 * MB
RSS_EVERY_S = 0.25
STORE_DOWN_METRIC = "activity_consumer_store_errors_total"  # with kind="transient"


@dataclass(frozen=True)
class IngestBench:
    events: int = 200_000
    backlog: int = 1_000_000
    rss_seconds: float = 30.0
    runs: int = 1
    batch: int = DEFAULT_BATCH_EVENTS
    webhook_concurrency: int = 8
    seed: int = 1


QUICK = IngestBench(events=2_000, backlog=30_000, rss_seconds=2.0)  # backlog > two consumer batches


@dataclass(frozen=True)
class Part:
    name: str  # activity.devtools.bench.ingest_parts.PARTS key
    label: str
    preload: bool = False  # the stream holds the events before the part starts
    nats: bool = True
    webhook: bool = False


PARTS = (
    Part("publish-raw", "raw JetStream publish: pipelined, PubAcks counted"),
    Part("webhook", "our webhook: EventLists of 400, 200 once all PubAcked", webhook=True),
    Part("pull-raw", "raw JetStream pull: MSG.NEXT batches + ack each", preload=True),
    Part("insert-raw", "raw insert: Store.insert_events batches", nats=False),
    Part("consumer", "our consumer: pull, insert, then ack", preload=True),
)


@dataclass(frozen=True)
class RssResult:
    backlog: int
    seconds: float
    trace: RssTrace
    held: int  # messages the consumer holds unacked while the store is down
    pending: int  # backlog it left in the stream


@dataclass(frozen=True)
class IngestReport:
    bench: IngestBench
    mean_event_bytes: int
    rates: dict[str, list[Measured]] = field(default_factory=dict)
    rss: RssResult | None = None
    load_before: float = 0.0
    load_after: float = 0.0
    machine: str = ""

    def rate(self, part: str) -> float:
        return statistics.median(m.events / m.seconds for m in self.rates[part])

    def seconds(self, part: str) -> float:
        return statistics.median(m.seconds for m in self.rates[part])

    def cpu_us(self, part: str) -> tuple[float, float, float, float]:
        """Median CPU microseconds per event: the part's own process, nats-server, our webhook server, all."""
        per_event = []
        for m in self.rates[part]:
            used = (m.cpu_part, m.cpu_nats, m.cpu_webhook)
            per_event.append([1e6 * cpu / m.events for cpu in (*used, sum(used))])
        own, nats_us, webhook_us, total = (statistics.median(column) for column in zip(*per_event, strict=True))
        return own, nats_us, webhook_us, total

    def cores(self, part: str) -> float:
        """Median cores kept busy while the part ran: all its CPU over its wall time."""
        return statistics.median((m.cpu_part + m.cpu_nats + m.cpu_webhook) / m.seconds for m in self.rates[part])


def generate(bench: IngestBench) -> list[bytes]:
    """The ResponseComplete events of `bench.events` requests, compact JSON: what the consumer stores."""
    generator = EventGenerator(GeneratorSettings(seed=bench.seed))
    return [orjson.dumps(done) for _, done in (generator.request() for _ in range(bench.events))]


async def preload(url: str, payloads: list[bytes], msg_ids: list[str] | None) -> None:
    nc = await nats.connect(url)
    try:
        await ensure_stream(nc.jetstream(), StreamSettings())
        await publish_pipelined(nc, SUBJECT, payloads, msg_ids, timeout_s=600)
    finally:
        await nc.close()


def run_part(part: Part, config: PartConfig) -> Measured:
    log = Path(config.work_dir) / f"{part.name}.log"
    with log.open("wb") as err:
        done = subprocess.run(
            [sys.executable, "-m", "activity.devtools.bench.ingest_parts", part.name, config.to_json()],
            stdout=subprocess.PIPE,
            stderr=err,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"part {part.name} failed (exit {done.returncode}):\n" + "\n".join(tail))
    return Measured(**orjson.loads(done.stdout.splitlines()[-1]))


def measure_part(
    part: Part, bench: IngestBench, events_file: Path, events: list[bytes], ids: list[str], work: Path
) -> Measured:
    work.mkdir(parents=True)
    config = PartConfig(
        events_file=str(events_file),
        work_dir=str(work),
        batch=bench.batch,
        webhook_concurrency=bench.webhook_concurrency,
    )
    if not part.nats:
        return run_part(part, config)
    with NatsServer(work / "jetstream") as server:
        assert server.process is not None
        config = replace(config, nats_url=server.url, nats_pid=server.process.pid)
        if part.preload:
            asyncio.run(preload(server.url, events, ids))
        if not part.webhook:
            return run_part(part, config)
        port = free_port()
        webhook = start_activity(
            ["webhook", "--nats-url", server.url, "--listen", f"127.0.0.1:{port}", "--cluster", "bench"],
            work / "webhook-server.log",
        )
        try:
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", webhook)
            return run_part(
                part, replace(config, webhook_url=f"http://127.0.0.1:{port}/events", webhook_pid=webhook.pid)
            )
        finally:
            stop(webhook)


async def _consumer_state(url: str) -> tuple[int, int]:
    """(held unacked, still pending) of our durable."""
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(STREAM, DURABLE)
        return int(info.num_ack_pending or 0), int(info.num_pending or 0)
    finally:
        await nc.close()


def measure_rss(bench: IngestBench, events: list[bytes], work: Path) -> RssResult:
    """`activity consume` against a store nobody listens on, with `bench.backlog` events waiting."""
    work.mkdir(parents=True)
    backlog = [events[i % len(events)] for i in range(bench.backlog)]
    with NatsServer(work / "jetstream") as server:
        asyncio.run(preload(server.url, backlog, None))
        del backlog
        dead_store = f"http://127.0.0.1:{free_port()}/audit"
        probes = free_port()
        flags = {
            "--nats-url": server.url,
            "--store": dead_store,
            "--listen": f"127.0.0.1:{probes}",
            "--batch-events": str(bench.batch),
        }
        consumer = start_activity(
            ["consume", *(x for pair in flags.items() for x in pair), "--shutdown-grace", "1s", "--log-level", "ERROR"],
            work / "consumer.log",
        )
        try:
            # Sample once the consumer has pulled and met the dead store: start-up growth is not the backlog's.
            deadline = time.monotonic() + 60
            while metric_value(f"http://127.0.0.1:{probes}/metrics", STORE_DOWN_METRIC, kind="transient") < 1:
                if consumer.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the consumer never tried the store; see {work / 'consumer.log'}")
                time.sleep(0.1)
            trace = sample_rss(consumer.pid, bench.rss_seconds, RSS_EVERY_S)
            held, pending = asyncio.run(_consumer_state(server.url))
        finally:
            stop(consumer)
    return RssResult(bench.backlog, bench.rss_seconds, trace, held, pending)


def measure(bench: IngestBench, work: Path, say: Callable[[str], None]) -> IngestReport:
    load_before = load_average()
    say(f"generating {bench.events:,} events")
    events = generate(bench)
    ids = message_ids(events)
    events_file = work / "events.jsonl"
    events_file.write_bytes(b"\n".join(events))
    rates: dict[str, list[Measured]] = {part.name: [] for part in PARTS}
    for run in range(1, bench.runs + 1):
        for part in PARTS:
            part_dir = work / f"{part.name}-{run}"
            measured = measure_part(part, bench, events_file, events, ids, part_dir)
            shutil.rmtree(part_dir, ignore_errors=True)  # a preloaded stream is GBs at full size
            rates[part.name].append(measured)
            say(f"run {run}/{bench.runs} {part.name}: {measured.events / measured.seconds:,.0f} events/s")
    say(f"consumer RSS: {bench.backlog:,} backlog, store down, {bench.rss_seconds:g}s")
    rss = measure_rss(bench, events, work / "rss")
    shutil.rmtree(work / "rss", ignore_errors=True)
    return IngestReport(
        bench=bench,
        mean_event_bytes=sum(map(len, events)) // max(len(events), 1),
        rates=rates,
        rss=rss,
        load_before=load_before,
        load_after=load_average(),
        machine=machine(),
    )


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def render(report: IngestReport) -> str:
    r, b = report, report.bench
    rows: list[tuple[str, ...]] = [("part", "events", "seconds", "events/s", "compared with", "target", "verdict")]

    def rate_row(part: Part, compared: str = "", target: str = "", verdict: str = "") -> None:
        total = r.rates[part.name][0].events
        rows.append(
            (
                part.label,
                f"{total:,}",
                f"{r.seconds(part.name):.2f}",
                f"{r.rate(part.name):,.0f}",
                compared,
                target,
                verdict,
            )
        )

    by_name = {p.name: p for p in PARTS}
    rate_row(by_name["publish-raw"])
    webhook_ratio = r.rate("webhook") / r.rate("publish-raw")
    rate_row(
        by_name["webhook"],
        f"{webhook_ratio:.2f} x raw publish",
        f">= {WEBHOOK_TARGET:.2f}",
        _verdict(webhook_ratio >= WEBHOOK_TARGET),
    )
    rate_row(by_name["pull-raw"])
    rate_row(by_name["insert-raw"])
    ceiling = min(r.rate("pull-raw"), r.rate("insert-raw"))
    consumer_ratio = r.rate("consumer") / ceiling
    rate_row(
        by_name["consumer"],
        f"{consumer_ratio:.2f} x min(raw pull, raw insert)",
        f">= {CONSUMER_TARGET:.2f}",
        _verdict(consumer_ratio >= CONSUMER_TARGET),
    )
    if r.rss is not None:
        t = r.rss.trace
        rows.append(
            (
                f"consumer RSS: {r.rss.backlog:,} backlog, store down",
                f"{r.rss.held:,} held",
                f"{r.rss.seconds:g}",
                f"max {t.max / MB:.1f} MB",
                f"growth {t.growth / MB:+.1f} MB ({'flat' if t.flat() else 'growing'})",
                f"<= {RSS_LIMIT // MB} MB, flat",
                _verdict(t.max <= RSS_LIMIT and t.flat()),
            )
        )
    cpu_rows: list[tuple[str, ...]] = [
        ("part", "its own process", "nats-server", "webhook server", "all", "cores busy")
    ]
    for part in PARTS:
        own, nats_us, webhook_us, total = r.cpu_us(part.name)
        cpu_rows.append(
            (
                part.label,
                f"{own:.1f}",
                f"{nats_us:.1f}" if part.nats else "",
                f"{webhook_us:.1f}" if part.webhook else "",
                f"{total:.1f}",
                f"{r.cores(part.name):.2f} of {os.cpu_count()}",
            )
        )
    header = (
        f"ingest benchmark: {b.events:,} ResponseComplete events (mean {r.mean_event_bytes:,} B), "
        f"batch {b.batch:,}, webhook concurrency {b.webhook_concurrency}, {b.runs} run(s), medians; "
        f"load average {r.load_before:.2f} before, {r.load_after:.2f} after"
    )
    if r.rss is not None:
        step = max(1, len(r.rss.trace.samples) // 12)
        shape = ", ".join(f"{x / MB:.0f}" for x in r.rss.trace.samples[::step])
        header += (
            f"\nconsumer with the store down: held {r.rss.held:,}, left {r.rss.pending:,} of {r.rss.backlog:,} "
            f"in the stream; RSS MB every {step * RSS_EVERY_S:g}s: {shape}"
        )
    cpu_note = (
        "CPU used while each part ran, microseconds per event (the webhook row's own process is the client posting "
        "the EventLists; the consumer's and raw insert's include their ClickHouse engine threads):"
    )
    return f"{r.machine}\n{header}\n\n{_table(rows)}\n\n{cpu_note}\n\n{_table(cpu_rows)}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def machine() -> str:
    """What the numbers were measured on, for docs/benchmarks.md."""
    mem_kb = psutil.virtual_memory().total // 1024
    nats_version = subprocess.run(
        [find_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("nats-py", "chdb", "clickhouse-connect", "orjson", "aiohttp")
    )
    return (
        f"machine: {os.cpu_count()} cores, {mem_kb / 1024 / 1024:.1f} GiB, {platform.platform()}; "
        f"Python {platform.python_version()}; {nats_version}; {versions}"
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = IngestBench()
    parser.add_argument("--events", type=int, default=d.events, help="events measured by each rate part")
    parser.add_argument("--backlog", type=int, default=d.backlog, help="stream backlog for the consumer RSS part")
    parser.add_argument("--rss-seconds", type=float, default=d.rss_seconds, help="how long RSS is sampled")
    parser.add_argument("--runs", type=int, default=d.runs, help="runs of each rate part; the table shows medians")
    parser.add_argument("--batch", type=int, default=d.batch, help="consumer batch = raw pull and insert batch")
    parser.add_argument(
        "--webhook-concurrency", type=int, default=d.webhook_concurrency, help="EventList POSTs in flight"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every part")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) for a look")


def run(args: argparse.Namespace) -> int:
    bench = (
        QUICK
        if args.quick
        else IngestBench(
            events=args.events,
            backlog=args.backlog,
            rss_seconds=args.rss_seconds,
            runs=args.runs,
            batch=args.batch,
            webhook_concurrency=args.webhook_concurrency,
        )
    )
    if min(bench.events, bench.backlog, bench.runs, bench.batch) < 1 or bench.rss_seconds <= 0:
        print("error: --events, --backlog, --runs, --batch and --rss-seconds must be positive", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="activity-bench-ingest-"))

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        report = measure(bench, work, say)
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            say(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(render(report))
    return 0
