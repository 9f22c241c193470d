"""`activity bench query --quick`: a smoke run that must print every row of the report, each with numbers."""

from __future__ import annotations

import re
import subprocess
import sys

from activity.devtools.bench.query import FILTERS, PAGE_SIZES, QUICK

NUMBER = re.compile(r"^-?\d[\d,]*(\.\d+)?$")


def _tables(report: str) -> list[list[list[str]]]:
    """Each markdown table of the report as rows of cells, header and separator dropped."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] | None = None
    for line in report.splitlines():
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if current is None:
            current = []
            tables.append(current)
            continue  # the header
        if not cells[0].startswith("---"):
            current.append(cells)
    return tables


def test_quick_run_prints_every_row_with_numbers() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "activity.cli", "bench", "query", "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = result.stdout.split("## Query", 1)[1]
    latency, rates, scaling = _tables(report)
    sizes = QUICK.sizes
    assert [(r[0], r[1], r[2]) for r in latency] == [
        (f"{size:,}", str(limit), name) for size in sizes for limit in PAGE_SIZES for name in FILTERS
    ]
    assert [(r[0], r[1]) for r in rates] == [(f"{size:,}", str(QUICK.concurrency)) for size in sizes]
    assert [(r[0], r[1]) for r in scaling] == [(str(limit), name) for limit in PAGE_SIZES for name in FILTERS]
    for row in latency:
        assert all(NUMBER.match(cell) and float(cell) > 0 for cell in row[3:7] + row[8:9]), row
        assert NUMBER.match(row[7]), row  # API minus raw: may be negative within noise
        assert re.fullmatch(r"≤ [\d.]+ (ok|MISSED)", row[9]), row
    for row in rates:
        assert all(NUMBER.match(cell) and float(cell) > 0 for cell in row[2:5]), row
    for row in scaling:
        assert all(NUMBER.match(cell) and float(cell) > 0 for cell in row[2:5]), row
