"""`activity apiserver`: serve AuditLogQuery as a Kubernetes aggregated API server.

Flags carry the names every aggregated server uses (--secure-port, --tls-cert-file, --client-ca-file,
--requestheader-*, --authorization-*), so its Deployment reads like any other; each is also an ACTIVITY_* env var.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from datetime import timedelta
from pathlib import Path

from apiserver.app import (
    DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
    DEFAULT_MAX_REQUESTS_INFLIGHT,
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_STORE_WORKERS,
    ApiServerSettings,
    start_apiserver,
)
from apiserver.auditlogquery.cursor import load_cursor_key
from apiserver.auditlogquery.timerange import format_duration
from apiserver.auditlogquery.types import (
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_MAX_QUERY_MEMORY_BYTES,
    DEFAULT_MAX_WINDOW,
    QuerySettings,
)
from apiserver.auth.authconfig import AuthSettings, add_auth_arguments
from apiserver.http.logs import FORMATS, configure_logging
from apiserver.http.tracing import load_tracing_configuration
from auditlog import engineoutput
from auditlog.config import ConfigError, parse_store_dsn
from auditlog.durations import DurationError, duration_flag, parse_timedelta
from auditlog.listener import add_listener_arguments, listener_limits
from auditlog.storelock import claim

log = logging.getLogger(__name__)


def _window(text: str) -> timedelta:
    try:
        window = parse_timedelta(text, days=True)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if window <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0")
    return window


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


_BINARY_SUFFIXES = {"": 1, "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4}


def _bytes(text: str) -> int:
    """A byte count, optionally with a Kubernetes binary suffix: 1073741824, 1Gi, 512Mi."""
    number = text.rstrip("KMGTi")
    suffix = text[len(number) :]
    if suffix not in _BINARY_SUFFIXES or not number.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a byte count: write e.g. 1Gi, 512Mi or 1073741824")
    return int(number) * _BINARY_SUFFIXES[suffix]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    serving = parser.add_argument_group("serving")
    serving.add_argument("--store", required=True, help="store DSN: chdb:///DIR or http(s)://USER:PASS@HOST:PORT/DB")
    serving.add_argument("--secure-port", type=int, default=6443, help="HTTPS port of the API")
    serving.add_argument("--bind-address", default="0.0.0.0", help="address to listen on")
    serving.add_argument(
        "--tls-cert-file", type=Path, help="serving certificate (PEM, chain allowed); unset: generate a self-signed one"
    )
    serving.add_argument("--tls-private-key-file", type=Path, help="private key of --tls-cert-file (PEM)")
    serving.add_argument(
        "--metrics-port", type=int, default=9090, help="plain-HTTP port for Prometheus /metrics (-1: off)"
    )
    serving.add_argument(
        "--tracing-config-file",
        type=Path,
        help="TracingConfiguration (apiserver.config.k8s.io/v1beta1) file: OTLP endpoint, samplingRatePerMillion",
    )
    serving.add_argument("--logging-format", choices=FORMATS, default="text", help="log line format")
    serving.add_argument(
        "--request-timeout",
        type=duration_flag,
        default=f"{DEFAULT_REQUEST_TIMEOUT_SECONDS:g}s",
        help="time before a request is answered 504 Timeout",
    )
    serving.add_argument(
        "--shutdown-delay-duration",
        type=duration_flag,
        default="0s",
        help="how long to keep serving after SIGTERM while /readyz reports not ready",
    )
    serving.add_argument(
        "--max-requests-inflight",
        type=int,
        default=DEFAULT_MAX_REQUESTS_INFLIGHT,
        help="read-only requests served at once before answering 429 (0: unlimited)",
    )
    serving.add_argument(
        "--max-mutating-requests-inflight",
        type=int,
        default=DEFAULT_MAX_MUTATING_REQUESTS_INFLIGHT,
        help="queries (POST) served at once before answering 429 (0: unlimited)",
    )
    query = parser.add_argument_group("queries")
    query.add_argument(
        "--max-page-size", type=_positive, default=DEFAULT_MAX_PAGE_SIZE, help="largest spec.limit accepted"
    )
    query.add_argument(
        "--max-query-window",
        type=_window,
        default=format_duration(DEFAULT_MAX_WINDOW),
        help="longest endTime - startTime accepted: a Go duration, or days and weeks (30d, 2w, 36h)",
    )
    query.add_argument(
        "--max-query-memory",
        type=_bytes,
        default=f"{DEFAULT_MAX_QUERY_MEMORY_BYTES // 1024**2}Mi",
        help="memory one query statement may use in the store (0: the store's limit); beyond it the query is a 422",
    )
    query.add_argument(
        "--max-query-rows",
        type=int,
        default=0,
        help="rows one query statement may read (0: unlimited); beyond it the query is a 422",
    )
    query.add_argument(
        "--store-workers",
        type=_positive,
        default=DEFAULT_STORE_WORKERS,
        help="queries that may run in the store at once",
    )
    query.add_argument(
        "--cursor-key-file",
        help="file with the key (>= 32 bytes) that signs continue tokens; the same on every replica. "
        "Unset: a random key per process",
    )
    add_auth_arguments(parser)
    add_listener_arguments(parser, tls=True)


def settings_from_args(args: argparse.Namespace) -> ApiServerSettings:
    return ApiServerSettings(
        query=QuerySettings(
            cursor_key=load_cursor_key(args.cursor_key_file),
            max_page_size=args.max_page_size,
            max_window=args.max_query_window,
            max_query_memory_bytes=args.max_query_memory,
            max_query_rows=args.max_query_rows,
        ),
        auth=AuthSettings.from_args(args),
        bind_address=args.bind_address,
        secure_port=args.secure_port,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        tracing=load_tracing_configuration(args.tracing_config_file) if args.tracing_config_file else None,
        request_timeout_seconds=args.request_timeout,
        max_requests_inflight=args.max_requests_inflight,
        max_mutating_requests_inflight=args.max_mutating_requests_inflight,
        store_workers=args.store_workers,
        listener=listener_limits(args),
    )


async def serve(settings: ApiServerSettings, dsn: str, shutdown_delay_seconds: float) -> None:
    handle = await start_apiserver(settings, parse_store_dsn(dsn))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: finishing in-flight requests")
    await handle.stop(shutdown_delay_seconds)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.logging_format)
    try:
        settings = settings_from_args(args)
        config = parse_store_dsn(args.store)
        if config.embedded:
            engineoutput.capture()  # the engine writes to descriptor 2: into our (possibly JSON) log lines instead
        with claim(config):  # an embedded store another process holds: refuse now, not "serving" and never ready
            asyncio.run(serve(settings, args.store, args.shutdown_delay_duration))
    except (ConfigError, ValueError, OSError) as err:
        log.error("%s", err)
        return 2
    return 0
