"""`activity migrate`: create or upgrade the schema; safe to run on every deploy."""

from __future__ import annotations

import argparse
import sys

from auditlog.config import ConfigError, parse_store_dsn
from auditlog.events import MAX_RETENTION_DAYS
from auditlog.schema import Layout, migrate, render_all
from auditlog.storage import StoreError
from auditlog.storelock import claim

DEFAULT_STORE = "chdb://./activity-data/store"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help="store DSN: chdb:///DIR (embedded engine) or http(s)://USER:PASS@HOST:PORT/DATABASE",
    )
    parser.add_argument(
        "--clickhouse-cluster",
        dest="cluster",
        default=None,
        help="ClickHouse cluster name: use ReplicatedReplacingMergeTree and ON CLUSTER (multi-node)",
    )
    parser.add_argument(
        "--retention-days",
        type=_retention_days,
        default=90,
        help=f"delete events older than this many days (0 keeps them forever; at most {MAX_RETENTION_DAYS})",
    )
    parser.add_argument(
        "--print",
        action="store_true",
        dest="print_only",
        help="print the SQL for a fresh store instead of applying it (review, or a DBA's run)",
    )


def _retention_days(value: str) -> int:
    days = int(value)
    if not 0 <= days <= MAX_RETENTION_DAYS:
        # The TTL's DateTime arithmetic ends in 2106: a longer retention of the latest storable event would wrap.
        raise argparse.ArgumentTypeError(f"{days} is not from 0 to {MAX_RETENTION_DAYS}")
    return days


def run(args: argparse.Namespace) -> int:
    try:
        config = parse_store_dsn(args.store)
        if args.print_only:
            for statement in render_all(Layout(config.database, args.cluster), args.retention_days):
                print(statement + ";\n")
            return 0
        print(f"migrating {config.describe()}", file=sys.stderr)
        with claim(config):
            report = migrate(
                config,
                cluster=args.cluster,
                retention_days=args.retention_days,
                log=lambda line: print(line, file=sys.stderr),
            )
    except (ConfigError, StoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # a driver error reaching the store: say what failed, not a traceback
        print(f"error: migration failed: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    if not report.applied and not report.ttl_changed:
        print("schema is up to date", file=sys.stderr)
    return 0
