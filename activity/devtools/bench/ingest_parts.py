"""One measured part of `activity bench ingest`, run in a fresh process so that no part inherits another's
threads, caches, chdb engine or garbage: `python -m activity.devtools.bench.ingest_parts PART CONFIG_JSON`.

The process does its own set-up (untimed), times only the work, checks the work was all done, and prints one
JSON line `{"events": N, "seconds": S}` on stdout.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nats
import orjson
from nats.aio.client import Client as NATS

from activity.devtools.bench.processes import cpu_seconds
from activity.devtools.bench.raw import RawError, publish_pipelined, pull_and_ack, pull_consumer_config
from activity.devtools.loadgen.batches import MAX_BATCH, Batch, event_list
from activity.devtools.loadgen.sender import Delivery, post_batches
from auditlog.config import parse_store_dsn
from auditlog.schema import migrate
from auditlog.storage import Store
from ingest.consumer.settings import ACK_PENDING_PER_BATCH, DEFAULT_BATCH_EVENTS, ConsumerSettings
from ingest.jetstream import STREAM, StreamSettings, ensure_stream, events_subject
from ingest.msgid import event_msg_id

CLUSTER = "bench"
SUBJECT = events_subject(CLUSTER)
RAW_DURABLE = "bench-raw"
ACKED_SAMPLE = "activity_consumer_messages_acked_total"


@dataclass(frozen=True)
class PartConfig:
    events_file: str  # one compact JSON event per line
    work_dir: str  # this part's own directory (store, logs)
    nats_url: str = ""
    batch: int = DEFAULT_BATCH_EVENTS  # the consumer's batch, also the raw pull request and insert size
    webhook_url: str = ""  # our receiver's /events, when the part measures it
    webhook_concurrency: int = 8
    nats_pid: int = 0  # processes whose CPU is counted with this one's while the work runs (0: none)
    webhook_pid: int = 0

    def to_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()


@dataclass(frozen=True)
class Measured:
    events: int
    seconds: float
    # CPU seconds used while the work ran: this process (all its threads: the consumer's ClickHouse engine too),
    # nats-server, and our webhook server.
    cpu_part: float = 0.0
    cpu_nats: float = 0.0
    cpu_webhook: float = 0.0


class CpuWindow:
    """CPU used by this process and the part's servers between entering and leaving the block."""

    def __init__(self, config: PartConfig) -> None:
        self._pids = (config.nats_pid, config.webhook_pid)
        self._start = self._end = (0.0, 0.0, 0.0)

    def _now(self) -> tuple[float, float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        nats_cpu, webhook_cpu = (cpu_seconds(pid) if pid else 0.0 for pid in self._pids)
        return own.ru_utime + own.ru_stime, nats_cpu, webhook_cpu

    def __enter__(self) -> CpuWindow:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        self._end = self._now()

    def measured(self, events: int, seconds: float) -> Measured:
        return Measured(events, seconds, *(end - start for start, end in zip(self._start, self._end, strict=True)))


def load_events(config: PartConfig) -> list[bytes]:
    return Path(config.events_file).read_bytes().splitlines()


def message_ids(events: list[bytes]) -> list[str]:
    return [event_msg_id(e, orjson.loads(e)["stage"]) for e in events]


async def _stream_messages(nc: NATS) -> int:
    info = await nc.jetstream().stream_info(STREAM)
    return int(info.state.messages)


async def publish_raw(config: PartConfig) -> Measured:
    events = load_events(config)
    ids = message_ids(events)
    nc = await nats.connect(config.nats_url)
    try:
        await ensure_stream(nc.jetstream(), StreamSettings())  # the stream our webhook creates
        with CpuWindow(config) as cpu:
            seconds = await publish_pipelined(nc, SUBJECT, events, ids)
        stored = await _stream_messages(nc)
    finally:
        await nc.close()
    if stored != len(events):
        raise RawError(f"stream holds {stored} messages, {len(events)} were PubAcked")
    return cpu.measured(len(events), seconds)


def event_list_of(events: list[bytes]) -> Batch:
    """An EventList of already serialised ResponseComplete events (spliced, not parsed again)."""
    body = event_list([orjson.Fragment(e) for e in events])
    return Batch(body=body, events=len(events), response_complete=len(events), malformed=0)


async def webhook(config: PartConfig) -> Measured:
    """Our receiver, running as its own process (`activity webhook`), fed pre-built EventLists by this one."""
    events = load_events(config)
    bodies = [event_list_of(events[i : i + MAX_BATCH]) for i in range(0, len(events), MAX_BATCH)]
    delivery = Delivery(url=config.webhook_url, concurrency=config.webhook_concurrency, attempts=1)
    with CpuWindow(config) as cpu:
        summary = await post_batches(bodies, delivery)
    nc = await nats.connect(config.nats_url)
    try:
        stored = await _stream_messages(nc)
    finally:
        await nc.close()
    if not summary.ok or stored != len(events):
        raise RuntimeError(f"{summary.failed_batches} batches failed {summary.rejections}; the stream holds {stored}")
    return cpu.measured(summary.events, summary.elapsed_s)


def _ack_pending(config: PartConfig) -> int:
    """The durable's max_ack_pending, the same for the raw pull as the consumer's default ratio to its batch."""
    return ACK_PENDING_PER_BATCH * config.batch


async def pull_raw(config: PartConfig) -> Measured:
    """The stream was preloaded with the events; drain it through a fresh durable."""
    total = len(load_events(config))
    nc = await nats.connect(config.nats_url)
    try:
        await nc.jetstream().add_consumer(STREAM, pull_consumer_config(RAW_DURABLE, _ack_pending(config)))
        with CpuWindow(config) as cpu:
            seconds = await pull_and_ack(nc, STREAM, RAW_DURABLE, total, config.batch)
    finally:
        await nc.close()
    return cpu.measured(total, seconds)


def _fresh_store(config: PartConfig) -> Store:
    store_config = parse_store_dsn(f"chdb://{Path(config.work_dir) / 'store'}")
    migrate(store_config)
    return Store(store_config)


async def _stored(store: Store) -> int:
    return int((await store.query_tsv("SELECT count() FROM events", {}))[0])


async def insert_raw(config: PartConfig) -> Measured:
    events = load_events(config)
    store = _fresh_store(config)
    try:
        with CpuWindow(config) as cpu:
            started = time.perf_counter()
            for i in range(0, len(events), config.batch):
                await store.insert_events(events[i : i + config.batch])
            seconds = time.perf_counter() - started
        stored = await _stored(store)
    finally:
        store.close()
    if stored != len(events):
        raise RuntimeError(f"the table holds {stored} rows, {len(events)} were inserted")
    return cpu.measured(len(events), seconds)


async def consumer(config: PartConfig) -> Measured:
    """Our consumer in this process on the preloaded stream: timed from its start to its last ack."""
    from ingest.consumer.consumer import Consumer
    from ingest.jetstream import connect

    total = len(load_events(config))
    store = _fresh_store(config)
    nc = await connect(config.nats_url, "bench-consumer")
    try:
        settings = ConsumerSettings(batch_events=config.batch, max_ack_pending=_ack_pending(config))
        ours = Consumer(settings, nc, store)
        with CpuWindow(config) as cpu:
            started = time.perf_counter()
            running = asyncio.create_task(ours.run())
            while (ours.metrics.registry.get_sample_value(ACKED_SAMPLE) or 0) < total:
                if running.done():
                    raise RuntimeError(f"the consumer stopped early: {running.exception()!r}")
                await asyncio.sleep(0.005)
            seconds = time.perf_counter() - started
        ours.stop()
        await running
        stored = await _stored(store)
    finally:
        await nc.close()
        store.close()
    if stored != total:
        raise RuntimeError(f"the table holds {stored} rows, {total} messages were acked")
    return cpu.measured(total, seconds)


PARTS: dict[str, Callable[[PartConfig], Coroutine[Any, Any, Measured]]] = {
    "publish-raw": publish_raw,
    "webhook": webhook,
    "pull-raw": pull_raw,
    "insert-raw": insert_raw,
    "consumer": consumer,
}


def main(argv: list[str]) -> int:
    name, raw_config = argv
    measured = asyncio.run(PARTS[name](PartConfig(**orjson.loads(raw_config))))
    print(orjson.dumps(asdict(measured)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
