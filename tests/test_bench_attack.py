"""`activity bench attack --quick`: the stack under steady load, then under the attacks, ends with every event
answered 200 in the store, readiness never lost, and the table printed. Speed is the benchmark's business: the
run is short, the probe timeout generous, and no rate or latency is asserted."""

from __future__ import annotations

import re
import ssl
import subprocess
import sys
from collections import Counter

from activity.devtools.bench.attack import RC, AttackBench, Stored, Watcher
from activity.devtools.up.layout import Ports

ATTACKS = (
    "EventList over 150 days",
    "reused Audit-ID pair",
    "gzip of 2,000 empty members",
    "gzip of {}, x 200,000",
    "YAML billion laughs",
    "YAML: 50 aliases of one anchor",
    "CEL: nested annotations.exists",
    "window 0001 -> 9999",
    "?timeout=1s queries",
    "8 concurrent queries",
    "idle connections (webhook)",
    "idle connections (API server)",
    "slowloris (webhook)",
    "slowloris (API server)",
)


def _rows(report: str) -> dict[str, list[str]]:
    rows = {}
    for line in report.splitlines():
        if line.startswith("| "):
            cells = [c.strip() for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_keeps_every_event_and_readiness_and_prints_the_table() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "activity.cli",
            "bench",
            "attack",
            "--quick",
            "--seconds",
            "4",
            "--probe-events",
            "600",
            "--probe-timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = _rows(done.stdout)
    lost = next(cells for name, cells in rows.items() if name.startswith("events lost (of "))
    assert lost[1:] == ["0", "", "0", "ok"], lost
    assert rows["readiness: longest run of failed polls"][-1] == "ok"  # with a 10 s probe timeout
    assert rows["loadgen batches given up"][-1] == "ok"
    for measure in ("ingest: events stored/s", "query p50 ms", "query p99 ms"):
        baseline, attacked = rows[measure][:2]
        assert float(baseline.replace(",", "")) > 0 and float(attacked.replace(",", "")) > 0, (measure, rows[measure])
    assert rows["ingest: events stored/s"][-1] in ("met", "missed")
    for attack in ATTACKS:  # each attack was sent at least once in phase B
        assert attack in rows, (attack, sorted(rows))
    # what must be refused is refused with a 4xx (never a 5xx), the events among the attacks are all accepted
    for attack, answer in [
        ("EventList over 150 days", 200),
        ("reused Audit-ID pair", 200),
        ("YAML billion laughs", 400),
        ("window 0001 -> 9999", 422),
    ]:
        assert re.fullmatch(rf"{answer} x[\d,]+", rows[attack][0]), (attack, rows[attack])


def test_both_events_of_a_reused_audit_id_are_needed_in_the_store() -> None:
    """Lost events are counted per (auditID, stage) by distinct contents: one of a pair stored is one lost."""
    pair = Counter({("reused", RC): 2, ("other", RC): 1})
    assert Stored({("reused", RC): 1, ("other", RC): 1}, {}).lost(pair) == 1
    assert Stored({("reused", RC): 2}, {}).lost(pair) == 1
    assert Stored({("reused", RC): 2, ("other", RC): 1, ("extra", RC): 3}, {}).lost(pair) == 0


def test_readiness_counts_the_longest_run_of_failed_polls() -> None:
    watcher = Watcher(Ports(20000), ssl.create_default_context(), AttackBench())
    outcomes = [True, False, False, True, False, False, False, True]
    watcher.polls["webhook"] = [(float(i), ok, "" if ok else f"fail {i}") for i, ok in enumerate(outcomes)]
    seen = watcher.readiness(0, 100)["webhook"]
    assert (seen.polls, seen.failed, seen.longest_failed_run, seen.first_failure) == (8, 5, 3, "fail 1")
    assert seen.longest_unready_s == 3.0  # from the poll at 4 to the good one at 7
    inside = watcher.readiness(0, 2.5)["webhook"]  # only the polls inside the window; the end closes the run
    assert (inside.longest_failed_run, inside.longest_unready_s) == (2, 1.5)
