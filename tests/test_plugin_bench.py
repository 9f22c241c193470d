"""`activity bench plugin`: a short run prints the start-up table, a row per command with numbers in every column."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

NUMBER = re.compile(r"^\d+\.\d{3}$")


ARGS = ("bench", "plugin", "--only", "help", "--only", "query")


@pytest.mark.parametrize("sizes", [["--events", "20", "--iterations", "1"], ["--quick"]], ids=" ".join)
def test_a_short_run_prints_wall_server_and_plugin_time_per_command(sizes: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "activity.cli", *ARGS, *sizes],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = done.stdout.split("## Plugin start-up", 1)[1]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in report.splitlines() if line.startswith("| `")]
    assert [row[0] for row in rows] == ["`--help`", "`query`"]  # the plugin's arguments
    for row in rows:
        assert all(NUMBER.match(value) for value in row[1:6]), row
        assert row[6] in ("ok", "MISSED")
        wall, server, plugin = (float(v) for v in row[1:4])
        assert abs(wall - server - plugin) < 0.002
    assert float(rows[0][2]) == 0.0  # --help never calls the server
    assert float(rows[1][2]) > 0.0
