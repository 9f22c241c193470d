"""`activity bench redaction` runs end to end on small sizes and reports what it measured."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("sizes", [["--events", "400", "--runs", "1"], ["--quick"]], ids=" ".join)
def test_a_small_run_reports_both_traffic_mixes(sizes: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "activity.cli", "bench", "redaction", *sizes, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    normal, heavy = json.loads(done.stdout)
    assert normal["redacted"] == 0 and heavy["redacted"] == heavy["events"] == 400
    assert 0 < normal["redact_us"] < heavy["redact_us"] and normal["split_us"] > 0
