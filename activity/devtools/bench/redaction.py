"""`activity bench redaction`: what redacting credentials adds to the webhook per event, on normal traffic and on
Secret-heavy traffic, next to what the webhook's fast path already spends validating and splitting the same bodies.

In-process and single-threaded (no NATS): both rows time the webhook's own functions over EventLists of 400, as the
receiver calls them (`decoding.plain_items`, then `Redactor.redact_plain` and `count`).
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from ingest.redaction import RedactionSettings, Redactor
from ingest.webhook.decoding import plain_items

BATCH = 400


def normal(count: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    """The ingest benchmark's traffic: the generator's ResponseComplete events (Secrets at level Metadata)."""
    events = EventGenerator(GeneratorSettings(seed=seed)).events(count)
    return (e for e in events if e["stage"] == "ResponseComplete")


def secret_heavy(count: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    """Every event a Secret write or read at RequestResponse, its bodies holding three keys of random data: the
    traffic of a policy that logs Secrets at RequestResponse, and the worst case for redaction."""
    rng = random.Random(seed)
    for event in normal(count, seed):
        data = {k: base64.b64encode(rng.randbytes(24)).decode() for k in ("username", "password", "ca.crt")}
        obj = {
            "kind": "Secret",
            "apiVersion": "v1",
            "metadata": (event.get("responseObject") or {}).get("metadata", {"name": "s", "namespace": "default"}),
            "data": data,
            "type": "Opaque",
        }
        ref = {k: v for k, v in event["objectRef"].items() if k != "apiGroup"} | {"resource": "secrets"}
        yield event | {"level": "RequestResponse", "objectRef": ref, "requestObject": obj, "responseObject": obj}


def bodies(events: Iterator[dict[str, Any]]) -> list[bytes]:
    items = [orjson.dumps(e) for e in events]
    head = b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":['
    return [head + b",".join(items[i : i + BATCH]) + b"]}" for i in range(0, len(items), BATCH)]


@dataclass(frozen=True)
class Row:
    traffic: str
    events: int
    mean_bytes: int
    redacted: int
    split_us: float  # CPU per event validating and splitting (the fast path before redaction)
    redact_us: float  # CPU per event redaction adds


def _timed(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.thread_time()  # CPU time: on a shared machine, waiting for a core is not our cost
        work()
        times.append(time.thread_time() - started)
    return statistics.median(times)


def measure(traffic: str, events: list[dict[str, Any]], runs: int) -> Row:
    batches = bodies(iter(events))
    split = [plain_items(b, len(events)) for b in batches]
    assert all(s is not None for s in split), "every body takes the fast path"
    counted: list[str] = []
    redactor = Redactor(RedactionSettings(key=b"bench-redaction-key-0123456789"), on_redacted=counted.append)
    split_s = _timed(runs, lambda: [plain_items(b, len(events)) for b in batches])

    def redact_all() -> None:
        for items in split:
            _, redacted = redactor.redact_plain(items)
            redactor.count(redacted)

    redact_s = _timed(runs, redact_all)
    total = sum(len(b) for b in batches)
    per_event = 1e6 / len(events)
    return Row(
        traffic, len(events), total // len(events), len(counted) // runs, split_s * per_event, redact_s * per_event
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| traffic | events | mean bytes | redacted | fast path: validate + split (CPU us/event) | redaction "
        "(CPU us/event) | redaction / fast path |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.traffic} | {r.events:,} | {r.mean_bytes:,} | {r.redacted:,} | {r.split_us:.2f} | "
            f"{r.redact_us:.2f} | {r.redact_us / r.split_us:.2f} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=20_000, help="events of each traffic mix")
    parser.add_argument("--runs", type=int, default=5, help="timed passes over them; the table shows medians")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (400 events, 1 run): a smoke run")


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.events, args.runs = 400, 1
    if min(args.events, args.runs) < 1:
        print("error: --events and --runs must be positive", file=sys.stderr)
        return 2
    rows = [
        measure("normal (loadgen)", list(normal(args.events)), args.runs),
        measure("Secret-heavy (every event a Secret with data)", list(secret_heavy(args.events)), args.runs),
    ]
    print(json.dumps([r.__dict__ for r in rows]) if args.json else table(rows))
    return 0
