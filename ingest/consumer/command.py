"""`activity consume`: move audit events from the JetStream durable into the store, acking after insert."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from nats.aio.client import Client as NATS

from auditlog import engineoutput
from auditlog.addresses import parse_host_port
from auditlog.config import ConfigError, StoreConfig, parse_store_dsn
from auditlog.durations import duration_flag, flag_default
from auditlog.fields import STAGES
from auditlog.listener import DEFAULT_LIMITS, ListenerLimits, add_listener_arguments, listener_limits
from auditlog.storage import Store
from auditlog.storelock import StoreInUse, claim
from ingest.consumer.consumer import Consumer
from ingest.consumer.probes import start_probes
from ingest.consumer.settings import ACK_PENDING_PER_BATCH, ConsumerSettings, SettingsError
from ingest.jetstream import connect

log = logging.getLogger("activity.consume")
D = ConsumerSettings()


def _stages(value: str) -> frozenset[str]:
    return frozenset(s.strip() for s in value.split(",") if s.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222", help="NATS server URL")
    parser.add_argument(
        "--store", required=True, help="store DSN: chdb:///DIR (embedded engine) or http(s)://USER:PASS@HOST:PORT/DB"
    )
    parser.add_argument("--listen", default=None, help="HOST:PORT for /healthz, /readyz and /metrics")
    parser.add_argument("--stream", default=D.stream, help="JetStream stream holding the audit events")
    parser.add_argument("--durable", default=D.durable, help="durable consumer name, shared by all replicas")
    parser.add_argument("--filter-subject", default=D.filter_subject, help="subjects the durable consumes")
    parser.add_argument(
        "--stages",
        type=_stages,
        default=",".join(sorted(D.stages)),  # a string: argparse converts it with `type`, and shows it plainly
        help=f"comma-separated stages to store (of {', '.join(STAGES)}); others are acked and counted",
    )
    parser.add_argument("--batch-events", type=int, default=D.batch_events, help="insert after this many messages")
    parser.add_argument("--batch-bytes", type=int, default=D.batch_bytes, help="insert after this many bytes")
    parser.add_argument(
        "--batch-age",
        type=duration_flag,
        default=flag_default(D.batch_age_s),
        help="insert a batch at the latest this old",
    )
    parser.add_argument(
        "--max-event-bytes",
        type=int,
        default=D.max_event_bytes,
        help="bigger events are dead-lettered (the webhook refuses events over the default itself)",
    )
    parser.add_argument(
        "--max-ack-pending",
        type=int,
        default=None,
        help=f"durable's limit of unacked messages over all replicas, at least --batch-events "
        f"(default: {ACK_PENDING_PER_BATCH} x --batch-events)",
    )
    parser.add_argument(
        "--ack-wait",
        type=duration_flag,
        default=flag_default(D.ack_wait_s),
        help="how long before JetStream redelivers an unacked message",
    )
    parser.add_argument(
        "--backoff-max",
        type=duration_flag,
        default=flag_default(D.backoff_max_s),
        help="longest wait between retries of a failing store",
    )
    parser.add_argument(
        "--shutdown-grace",
        type=duration_flag,
        default=flag_default(D.shutdown_grace_s),
        help="on SIGTERM, how long to keep retrying a failing store before handing the batch back",
    )
    parser.add_argument(
        "--stall-after",
        type=duration_flag,
        default=flag_default(D.stall_after_s),
        help="how long a batch may be held without any insert or ack before /readyz fails",
    )
    add_listener_arguments(parser)
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def settings_from(args: argparse.Namespace) -> ConsumerSettings:
    return ConsumerSettings(
        stream=args.stream,
        durable=args.durable,
        filter_subject=args.filter_subject,
        stages=frozenset(args.stages),
        batch_events=args.batch_events,
        batch_bytes=args.batch_bytes,
        batch_age_s=args.batch_age,
        max_event_bytes=args.max_event_bytes,
        max_ack_pending=args.max_ack_pending or ACK_PENDING_PER_BATCH * args.batch_events,
        ack_wait_s=args.ack_wait,
        backoff_max_s=max(args.backoff_max, D.backoff_initial_s),
        shutdown_grace_s=args.shutdown_grace,
        stall_after_s=args.stall_after,
    )


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
        config = parse_store_dsn(args.store)
        listen = parse_host_port(args.listen) if args.listen else None
        limits = listener_limits(args)
    except (SettingsError, ConfigError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.embedded:
        engineoutput.capture()  # the engine writes to descriptor 2: into our log lines instead
    try:
        with claim(config):  # an embedded store another process holds: refuse now, not retry forever
            return asyncio.run(serve(settings, args.nats_url, config, listen, limits))
    except StoreInUse as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


async def _connect(url: str, stopping: asyncio.Event) -> NATS | None:
    """nats-py gives up when the very first connection fails; a consumer starting before NATS keeps trying."""
    while not stopping.is_set():
        try:
            return await connect(url, name="activity-consumer")
        except Exception as err:
            log.warning("cannot reach NATS at %s yet: %s", url, err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)
    return None


async def serve(
    settings: ConsumerSettings,
    nats_url: str,
    config: StoreConfig,
    listen: tuple[str, int] | None,
    limits: ListenerLimits = DEFAULT_LIMITS,
) -> int:
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    consumer: Consumer | None = None

    def on_signal() -> None:
        stopping.set()
        if consumer is not None:
            consumer.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    store = Store(config)
    try:
        nc = await _connect(nats_url, stopping)
        if nc is None:
            return 0
        try:
            consumer = Consumer(settings, nc, store)
            if stopping.is_set():
                consumer.stop()
            runner = await start_probes(consumer, *listen, limits) if listen else None
            log.info("consuming %s/%s into %s", settings.stream, settings.durable, config.describe())
            try:
                await consumer.run()
            finally:
                if runner is not None:
                    await runner.cleanup()
        finally:
            await nc.close()
    finally:
        store.close()
    return 0 if consumer.all_flushed else 1
