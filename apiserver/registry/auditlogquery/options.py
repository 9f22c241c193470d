"""AuditLogQuery's flags (the operator's limits) and the QuerySettings they make."""

from __future__ import annotations

import argparse
from datetime import timedelta

from apiserver.apis.activity.v1alpha1.defaults import (
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_MAX_QUERY_MEMORY_BYTES,
    DEFAULT_MAX_WINDOW,
)
from apiserver.machinery.flagtypes import byte_count, positive
from apiserver.registry.auditlogquery.cursor import load_cursor_key
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.auditlogquery.timerange import format_duration
from auditlog.durations import DurationError, parse_timedelta


def _window(text: str) -> timedelta:
    try:
        window = parse_timedelta(text, days=True)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if window <= timedelta(0):
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than 0")
    return window


def add_arguments(query: argparse._ArgumentGroup) -> None:
    query.add_argument(
        "--max-page-size", type=positive, default=DEFAULT_MAX_PAGE_SIZE, help="largest spec.limit accepted"
    )
    query.add_argument(
        "--max-query-window",
        type=_window,
        default=format_duration(DEFAULT_MAX_WINDOW),
        help="longest endTime - startTime accepted: a Go duration, or days and weeks (30d, 2w, 36h)",
    )
    query.add_argument(
        "--max-query-memory",
        type=byte_count,
        default=f"{DEFAULT_MAX_QUERY_MEMORY_BYTES // 1024**2}Mi",
        help="memory one query statement may use in the store (0: the store's limit); beyond it the query is a 422",
    )
    query.add_argument(
        "--max-query-rows",
        type=int,
        default=0,
        help="rows one query statement may read (0: unlimited); beyond it the query is a 422",
    )


def add_key_argument(query: argparse._ArgumentGroup) -> None:
    query.add_argument(
        "--cursor-key-file",
        help="file with the key (>= 32 bytes) that signs continue tokens; the same on every replica. "
        "Unset: a random key per process",
    )


def settings_from_args(args: argparse.Namespace) -> QuerySettings:
    return QuerySettings(
        cursor_key=load_cursor_key(args.cursor_key_file),
        max_page_size=args.max_page_size,
        max_window=args.max_query_window,
        max_query_memory_bytes=args.max_query_memory,
        max_query_rows=args.max_query_rows,
    )
