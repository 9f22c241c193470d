"""`activity bench AREA`: measure one area of ours against its raw ceilings and print the table.

Each area is a module of its own exposing `add_arguments(parser)` and `run(args) -> int`, like a subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

from activity.devtools import INSTALL_HINT

# area -> (module, one-line help). An area whose module is not in this installation is not offered.
AREAS: dict[str, tuple[str, str]] = {
    "ingest": (
        "activity.devtools.bench.ingest",
        "webhook and consumer rates vs raw JetStream publish/pull and raw inserts; consumer RSS with a backlog",
    ),
    "query": ("activity.devtools.bench.query", "AuditLogQuery latencies over a large stored history"),
    "redaction": ("activity.devtools.bench.redaction", "what redacting credentials adds per event in the webhook"),
    "plugin": ("activity.devtools.bench.plugin", "the kubectl plugin's start-up: wall time minus the server's time"),
    "attack": (
        "activity.devtools.bench.attack",
        "ingest, query p99 and readiness under load, without and with attacks",
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    areas = parser.add_subparsers(dest="area", metavar="AREA", required=True)
    for name, (module, help_text) in AREAS.items():
        if importlib.util.find_spec(module) is None:
            continue
        sub = areas.add_parser(
            name, help=help_text, description=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )
        sub.set_defaults(bench_module=module, bench_broken=None)
        try:
            importlib.import_module(module).add_arguments(sub)
        except ImportError as err:  # one area that cannot load must not take the others down with it
            sub.set_defaults(bench_broken=f"{type(err).__name__}: {err}")


def run(args: argparse.Namespace) -> int:
    if args.bench_broken:
        print(f"error: bench {args.area} cannot load ({INSTALL_HINT}?): {args.bench_broken}", file=sys.stderr)
        return 2
    return int(importlib.import_module(args.bench_module).run(args))
