"""`activity webhook`: receive kube-apiserver audit webhooks and publish every event to JetStream."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from nats.errors import Error as NatsError

from auditlog.addresses import host_port_flag
from auditlog.durations import duration_flag, flag_default
from auditlog.listener import add_listener_arguments, listener_limits
from ingest.jetstream import STREAM, StreamSettings, connect
from ingest.redaction import flags as redaction_flags
from ingest.webhook.service import start_webhook
from ingest.webhook.settings import WebhookSettings

log = logging.getLogger(__name__)
_DEFAULTS = WebhookSettings()
_STREAM_DEFAULTS = StreamSettings()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222", help="NATS server to publish to")
    parser.add_argument(
        "--listen", type=host_port_flag, default="0.0.0.0:8090", metavar="HOST:PORT", help="address to serve on"
    )
    parser.add_argument(
        "--cluster", default=_DEFAULTS.cluster, help="cluster name: events go to subject audit.k8s.<cluster>"
    )
    streams = parser.add_argument_group("stream management")
    streams.add_argument("--stream", default=STREAM, help="JetStream stream holding the events")
    streams.add_argument(
        "--no-manage-streams",
        action="store_true",
        help="do not create or update the streams at start (NACK or an operator owns them)",
    )
    streams.add_argument(
        "--duplicate-window",
        type=duration_flag,
        default=flag_default(_STREAM_DEFAULTS.duplicate_window_s),
        help="JetStream drops an event re-sent byte for byte within this window",
    )
    streams.add_argument(
        "--max-age", type=duration_flag, default=flag_default(_STREAM_DEFAULTS.max_age_s), help="stream retention"
    )
    streams.add_argument(
        "--max-bytes", type=int, default=_STREAM_DEFAULTS.max_bytes, help="stream size limit (-1: unlimited)"
    )
    streams.add_argument("--replicas", type=int, default=_STREAM_DEFAULTS.replicas, help="stream replicas")
    limits = parser.add_argument_group("limits")
    limits.add_argument(
        "--max-body-bytes",
        type=int,
        default=_DEFAULTS.max_body_bytes,
        help="largest EventList accepted, counted after gzip decompression (larger: 400)",
    )
    limits.add_argument(
        "--max-items", type=int, default=_DEFAULTS.max_items, help="most items accepted in one EventList (more: 400)"
    )
    limits.add_argument(
        "--publish-timeout",
        type=duration_flag,
        default=flag_default(_DEFAULTS.publish_timeout_s),
        help="how long a batch waits for its PubAcks before answering 503",
    )
    limits.add_argument(
        "--max-in-flight", type=int, default=_DEFAULTS.max_in_flight, help="PubAcks outstanding at most"
    )
    add_listener_arguments(parser)
    redaction_flags.add_arguments(parser, key_flags=True)
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="log lines at or above"
    )


def settings_from(args: argparse.Namespace) -> WebhookSettings:
    host, port = args.listen
    return WebhookSettings(
        host=host,
        port=port,
        cluster=args.cluster,
        stream=StreamSettings(
            name=args.stream,
            duplicate_window_s=args.duplicate_window,
            max_age_s=args.max_age,
            max_bytes=args.max_bytes,
            replicas=args.replicas,
        ),
        manage_streams=not args.no_manage_streams,
        max_body_bytes=args.max_body_bytes,
        max_items=args.max_items,
        publish_timeout_s=args.publish_timeout,
        max_in_flight=args.max_in_flight,
        listener=listener_limits(args),
        redaction=redaction_flags.settings_from(args),
    )


async def serve(settings: WebhookSettings, nats_url: str) -> int:
    """Serve until SIGTERM or SIGINT, then stop accepting, finish the batches in flight and exit 0."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    # connect() waits for NATS as long as it takes; a signal meanwhile ends the wait.
    connecting = asyncio.ensure_future(connect(nats_url, "activity-webhook"))
    signalled = asyncio.ensure_future(stopping.wait())
    await asyncio.wait((connecting, signalled), return_when=asyncio.FIRST_COMPLETED)
    if not connecting.done():
        connecting.cancel()
        log.info("stopped before NATS at %s was reachable", nats_url)
        return 0
    try:
        nc = connecting.result()
    except (NatsError, OSError) as err:
        log.error("cannot connect to NATS at %s: %s", nats_url, err)
        return 1
    try:
        handle = await start_webhook(settings, nc)
    except (NatsError, OSError) as err:  # a stream config NATS refuses, a port already taken
        log.error("cannot start: %s", err)
        await nc.close()
        return 1
    await signalled
    log.info("stopping: finishing the batches in flight")
    await handle.stop()
    await nc.drain()
    log.info("stopped")
    return 0


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        stream=sys.stderr, level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = settings_from(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return asyncio.run(serve(settings, args.nats_url))
