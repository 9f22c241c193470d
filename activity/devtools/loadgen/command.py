"""`activity loadgen`: send realistic kube-apiserver audit webhook traffic to a receiver, with progress."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from activity.devtools.loadgen.batches import MAX_BATCH, clocked_plan
from activity.devtools.loadgen.sender import Delivery, LoadSummary, Progress, send


def _start(value: str) -> datetime | None:
    if value == "now":
        return None
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--start {value!r} needs a UTC offset, e.g. 2026-11-28T09:00:00Z")
    return stamp


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webhook", required=True, help="receiver URL, e.g. http://127.0.0.1:8090/events")
    parser.add_argument(
        "--events",
        type=int,
        default=10_000,
        help="valid audit events to send; each request gives two (RequestReceived, ResponseComplete)",
    )
    parser.add_argument("--rate", type=float, default=0.0, help="events per second (0: as fast as possible)")
    parser.add_argument("--batch", type=int, default=MAX_BATCH, help="items per EventList, like kube-apiserver")
    parser.add_argument("--concurrency", type=int, default=4, help="EventList POSTs in flight")
    parser.add_argument("--seed", type=int, default=1, help="same seed and --start: the same traffic")
    parser.add_argument(
        "--start",
        type=_start,
        default=None,
        help="RFC3339 time of the first request; default 'now' (ends now when unpaced, follows the clock "
        "when --rate is set)",
    )
    parser.add_argument(
        "--malformed-ratio",
        type=float,
        default=0.0,
        help="share of items that are malformed (the receiver must dead-letter them and keep the rest)",
    )
    parser.add_argument("--gzip", action="store_true", help="gzip the bodies (Content-Encoding: gzip)")
    parser.add_argument("--attempts", type=int, default=5, help="tries per batch on 5xx/429/connection errors")
    parser.add_argument("--initial-backoff", type=float, default=0.5, help="seconds before the first retry")
    parser.add_argument("--insecure", action="store_true", help="do not verify the receiver's TLS certificate")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def progress_line(p: Progress, previous: Progress | None) -> str:
    window = p.elapsed_s - (previous.elapsed_s if previous else 0.0)
    recent = (p.posted - (previous.posted if previous else 0)) / window if window > 0 else 0.0
    return (
        f"[{p.elapsed_s:6.1f}s] posted {p.posted:,} ({recent:,.0f}/s)  acked {p.acked:,}  "
        f"dead-lettered {p.dead_lettered:,}  retries {p.retries:,}  failed {p.failed:,}"
    )


def summary_lines(s: LoadSummary) -> list[str]:
    lines = [
        f"events sent:        {s.events:,} (ResponseComplete {s.response_complete:,})",
        f"malformed sent:     {s.malformed:,} (dead-lettered {s.dead_lettered:,})",
        f"batches:            {s.batches:,} acknowledged, {s.failed_batches:,} failed "
        f"({s.failed_items:,} items), {s.retries:,} retries",
        f"elapsed:            {s.elapsed_s:.2f} s",
        f"rate:               {s.rate:,.0f} items/s",
    ]
    lines += [f"error:              {why}" for why in s.rejections]
    return lines


def run(args: argparse.Namespace) -> int:
    try:
        plan = clocked_plan(
            args.events,
            now=datetime.now(UTC),
            rate=args.rate,
            start=args.start,
            seed=args.seed,
            batch=args.batch,
            malformed_ratio=args.malformed_ratio,
        )
        delivery = Delivery(
            url=args.webhook,
            rate=args.rate,
            concurrency=args.concurrency,
            gzip=args.gzip,
            attempts=args.attempts,
            initial_backoff_s=args.initial_backoff,
            verify_tls=not args.insecure,
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    last: list[Progress] = []

    def show(p: Progress) -> None:
        print(progress_line(p, last[-1] if last else None), file=sys.stderr, flush=True)
        last[:] = [p]

    summary = asyncio.run(send(plan, delivery, None if args.quiet else show))
    print("\n".join(summary_lines(summary)))
    return 0 if summary.ok else 1
