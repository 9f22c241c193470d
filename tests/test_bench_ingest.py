"""`activity bench ingest --quick`: every part runs on real parts and lands in the table with a number. Speed
itself is the benchmark's business, not a test's."""

from __future__ import annotations

import re
import subprocess
import sys

from activity.devtools.bench.ingest import PARTS
from activity.devtools.bench.processes import RssTrace

MB = 1024 * 1024


def _rows(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith("| ") and not line.startswith("| part "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_reports_every_part_with_a_rate() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "activity.cli", "bench", "ingest", "--quick"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rates, _, cpu = done.stdout.partition("CPU used while each part ran")
    rows = _rows(rates)
    for part in PARTS:
        events, seconds, rate = rows[part.label][:3]
        assert events == "2,000"
        assert float(seconds) > 0
        assert float(rate.replace(",", "")) > 0
    assert re.fullmatch(r"[0-9.]+ x raw publish", rows[PARTS[1].label][3])
    assert re.fullmatch(r"[0-9.]+ x min\(raw pull, raw insert\)", rows[PARTS[4].label][3])
    rss = next(cells for label, cells in rows.items() if label.startswith("consumer RSS: 30,000 backlog"))
    assert 10 < float(re.fullmatch(r"max ([0-9.]+) MB", rss[2])[1]) < 1000  # type: ignore[index]
    held = int(rss[0].removesuffix(" held").replace(",", ""))
    assert 0 < held < 30_000, "with the store down the consumer holds a batch or two, not the backlog"
    assert "cores" in done.stdout and "nats-server" in done.stdout
    # Where the CPU went, per part: every part used some, and the servers' share is counted where they ran.
    used = _rows(cpu)
    for part in PARTS:
        own, nats_us, webhook_us, total, cores = used[part.label]
        assert float(own) > 0 and float(total) >= float(own)
        assert (nats_us != "") == part.nats and (webhook_us != "") == part.webhook
        assert re.fullmatch(r"[0-9.]+ of [0-9]+", cores)
    assert float(used[PARTS[1].label][2]) > 0, "the webhook server's own CPU is counted"


def test_flat_means_the_second_half_does_not_outgrow_the_first() -> None:
    steady = RssTrace((80 * MB, 90 * MB, 88 * MB, 90 * MB, 91 * MB, 89 * MB))
    growing = RssTrace((80 * MB, 90 * MB, 100 * MB, 120 * MB, 140 * MB, 160 * MB))
    assert steady.flat() and steady.max == 91 * MB
    assert not growing.flat() and growing.growth == 60 * MB
