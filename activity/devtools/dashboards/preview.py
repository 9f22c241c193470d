"""Render each dashboard's panels to a PNG from the same queries, against a local `activity up` with demo traffic.

A preview for people who would rather look than read, not a Grafana: Prometheus panels show their value now, as a
real Prometheus scraping the stack every second answers their query (rates over the last 15 s, see localprom);
ClickHouse panels run their real SQL over the last three hours once the stack has stopped (one process at a time
may hold the embedded store). Needs the `prometheus` binary (Debian/Ubuntu: apt-get install prometheus).

    python -m activity.devtools.dashboards.preview [--out docs/dashboards] [--port-base 28090] [--seconds 15]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from PIL import Image

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.gridspec import GridSpec
from matplotlib.transforms import Bbox

from activity.devtools.dashboards import localprom, pipeline, sqlrun
from activity.devtools.dashboards.build import DASHBOARDS
from activity.devtools.dashboards.livestack import exercise
from activity.devtools.dashboards.macros import TimeRange
from activity.devtools.dashboards.model import (
    GRID_WIDTH,
    Dashboard,
    Panel,
    PanelType,
    PromTarget,
    QueryVariable,
    SqlTarget,
)
from activity.devtools.up.banner import READY_LINE
from activity.devtools.up.layout import DataDir, Ports
from auditlog.config import parse_store_dsn
from auditlog.storage import Store

START_TIMEOUT_S = 120.0
ROW_INCHES = 0.32  # one grid unit of height
WINDOW = timedelta(hours=3)


@dataclass
class Drawn:
    """What one panel shows: bars (label → value), lines (series → points), a table, or a note."""

    bars: dict[str, float] | None = None
    lines: dict[str, list[tuple[datetime, float]]] | None = None
    table: tuple[tuple[str, ...], list[tuple[Any, ...]]] | None = None
    note: str = ""


def _legend(template: str, labels: frozenset[tuple[str, str]]) -> str:
    text = template
    for key, value in labels:
        text = text.replace("{{" + key + "}}", value)
    return text if template != "__auto" else ",".join(v for _, v in sorted(labels)) or "value"


def prom_panel(panel: Panel, prometheus: localprom.LocalPrometheus) -> Drawn:
    bars: dict[str, float] = {}
    try:
        for target in panel.targets:
            assert isinstance(target, PromTarget)
            for labels, value in sorted(prometheus.query(target.expr).items(), key=lambda kv: sorted(kv[0])):
                if not math.isnan(value):
                    bars[_legend(target.legend or "__auto", labels)] = value
    except localprom.QueryFailed as err:
        return Drawn(note=f"query failed: {err}")
    if bars:
        return Drawn(bars=bars)
    needs_exporter = pipeline.EXPORTER_NOTE in panel.description
    return Drawn(note="no samples: needs prometheus-nats-exporter" if needs_exporter else "no samples yet")


def _prom_drawn(panel: Panel, prometheus: localprom.LocalPrometheus) -> Drawn | None:
    return prom_panel(panel, prometheus) if isinstance(panel.targets[0], PromTarget) else None


async def sql_panel(panel: Panel, store: Store, time_range: TimeRange, chosen: sqlrun.Chosen) -> Drawn:
    (target,) = panel.targets
    assert isinstance(target, SqlTarget)
    result = await sqlrun.run(store, target.sql, time_range, chosen)
    if not result.rows:
        return Drawn(note="no rows")
    if panel.kind is PanelType.TIMESERIES:
        lines: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        if len(result.names) == 3 and isinstance(result.rows[0][1], str):  # long form: time, series, value
            for t, series, value in result.rows:
                lines[series].append((t, float(value)))
            keep = sorted(lines, key=lambda s: -sum(v for _, v in lines[s]))[:8]
            return Drawn(lines={s: lines[s] for s in keep})
        for row in result.rows:
            for name, value in zip(result.names[1:], row[1:], strict=True):
                lines[name].append((row[0], float(value)))
        return Drawn(lines=dict(lines))
    if panel.kind is PanelType.BARGAUGE:
        return Drawn(bars={str(row[0]): float(row[1]) for row in result.rows})
    if panel.kind is PanelType.STAT:
        return Drawn(bars={name: float(value) for name, value in zip(result.names, result.rows[0], strict=True)})
    return Drawn(table=(result.names, result.rows))


def _fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value * 1000:.1f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if unit == "percentunit":
        return f"{value * 100:.2f} %"
    if unit == "bytes":
        for suffix in ("B", "KiB", "MiB", "GiB"):
            if abs(value) < 1024:
                return f"{value:.0f} {suffix}"
            value /= 1024
        return f"{value:.1f} TiB"
    rate = "/s" if unit in ("ops", "reqps") else ""
    return (f"{value:.2f}" if value != int(value) else f"{int(value)}") + rate


def _clip(text: str, width: int) -> str:
    """Cut at a character, not a word: user names like system:serviceaccount:... have no spaces."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return f"{value:%H:%M:%S}"
    return _clip(str(value), 26)


def draw(ax: Axes, panel: Panel, drawn: Drawn) -> None:
    ax.set_title(_clip(panel.title, 48), fontsize=10, loc="left")
    if drawn.bars:
        names = [_clip(n, 26) for n in drawn.bars][:10]
        values = list(drawn.bars.values())[:10]
        bars = ax.barh(names[::-1], values[::-1], color="#3274d9")
        ax.bar_label(bars, labels=[_fmt(v, panel.unit) for v in values[::-1]], fontsize=7, padding=2)
        ax.tick_params(labelsize=7)
        ax.set_xticks([])
        ax.margins(x=0.3)
    elif drawn.lines:
        for name, points in drawn.lines.items():
            times = np.array([p[0].replace(tzinfo=None) for p in points], dtype="datetime64[us]")
            ax.plot(times, [p[1] for p in points], label=_clip(name, 28), linewidth=1)
        ax.legend(fontsize=6, loc="upper left")
        ax.tick_params(labelsize=6)
    elif drawn.table:
        headers, rows = drawn.table
        cells = [[_cell(v) for v in row] for row in rows[:8]]
        # columns as wide as their longest text, so long user names do not run over their neighbours
        widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
        ax.axis("off")
        table = ax.table(
            cellText=cells,
            colLabels=list(headers),
            colWidths=[w / sum(widths) for w in widths],
            cellLoc="left",
            bbox=Bbox.from_bounds(0, 0, 1, 1),
        )
        table.auto_set_font_size(False)
        table.set_fontsize(6)
    else:
        ax.axis("off")
        ax.text(0.5, 0.5, drawn.note, ha="center", va="center", fontsize=8, color="grey", wrap=True)


def render(dashboard: Dashboard, drawings: list[Drawn], out: Path) -> None:
    """The panels where Grafana puts them: the dashboard's own 24-column grid, rows as headings."""
    laid_out = dashboard.to_json()["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in laid_out)
    fig = plt.figure(figsize=(16, height * ROW_INCHES))
    grid = GridSpec(height, GRID_WIDTH, figure=fig, hspace=4.0, wspace=3.5)
    drawn = iter(zip(dashboard.panels, drawings, strict=True))
    for placed in laid_out:
        x, y, w, h = (placed["gridPos"][k] for k in "xywh")
        ax = fig.add_subplot(grid[y : y + h, x : x + w])
        if placed["type"] == "row":
            ax.axis("off")
            ax.text(0, 0, placed["title"], fontsize=12, fontweight="bold", va="bottom")
            continue
        draw(ax, *next(drawn))
    inches = height * ROW_INCHES
    fig.suptitle(f"{dashboard.title} (preview)", fontsize=14, x=0.01, y=1 - 0.1 / inches, ha="left", va="top")
    fig.subplots_adjust(left=0.1, right=0.98, top=1 - 0.75 / inches, bottom=0.3 / inches)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=60)
    plt.close(fig)
    # a 64-colour palette: a fraction of the size, and the charts use few colours anyway
    Image.open(buffer).convert("RGB").quantize(64).save(out, optimize=True)


def _start_up(root: Path, ports: Ports, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "activity.cli", "up", "--data-dir", str(root), "--port-base", str(ports.base)]
    with log.open("wb") as sink:
        process = subprocess.Popen([*command, "--with-demo-traffic"], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while READY_LINE not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise SystemExit(f"`activity up` did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)
    return process


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)  # `up` stops its nats-server child and closes the store
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _sql_drawings(store_dsn: str) -> dict[str, list[Drawn]]:
    now = datetime.now(UTC)
    time_range = TimeRange(now - WINDOW, now, timedelta(minutes=2))
    store = Store(parse_store_dsn(store_dsn))
    try:
        drawings: dict[str, list[Drawn]] = {}
        for stem, dashboard in DASHBOARDS.items():
            chosen = {v.name: None for v in dashboard.variables if isinstance(v, QueryVariable)}
            drawings[stem] = [
                await sql_panel(p, store, time_range, chosen) if isinstance(p.targets[0], SqlTarget) else Drawn()
                for p in dashboard.panels
            ]
        return drawings
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m activity.devtools.dashboards.preview", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/dashboards"), help="where the PNGs go")
    parser.add_argument("--port-base", type=int, default=28090, help="first of the five ports `activity up` uses")
    parser.add_argument("--seconds", type=float, default=15.0, help="time between the two rounds of requests")
    args = parser.parse_args(argv)
    ports = Ports(args.port_base)
    with tempfile.TemporaryDirectory(prefix="activity-preview-") as tmp:
        data = DataDir(Path(tmp) / "data")
        process = _start_up(data.root, ports, Path(tmp) / "up.log")
        try:
            with localprom.running(ports, Path(tmp) / "prometheus") as prometheus:
                exercise(ports, data.kubeconfig, Path(tmp) / "kubecache")
                time.sleep(args.seconds)
                exercise(ports, data.kubeconfig, Path(tmp) / "kubecache")
                time.sleep(2 * localprom.SCRAPE_SECONDS)  # the last requests scraped
                prom = {stem: [_prom_drawn(p, prometheus) for p in d.panels] for stem, d in DASHBOARDS.items()}
        finally:
            _stop(process)
        sql = asyncio.run(_sql_drawings(data.store_dsn))
    args.out.mkdir(parents=True, exist_ok=True)
    for stem, dashboard in DASHBOARDS.items():
        drawings = [p or d for p, d in zip(prom[stem], sql[stem], strict=True)]
        out = args.out / f"{stem}.png"
        render(dashboard, drawings, out)
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
