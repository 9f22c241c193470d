"""Write the dashboards' JSON and their GrafanaDashboard resources; `--check` fails if the committed ones differ.

Run from the repository root: `python -m activity.devtools.dashboards.build [--check]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from activity.devtools.dashboards import apiserver, audit_activity, pipeline
from activity.devtools.dashboards.model import Dashboard
from activity.devtools.dashboards.operator import dashboard_json, resource_yaml

# file stem → dashboard
DASHBOARDS: dict[str, Dashboard] = {
    "audit-pipeline": pipeline.DASHBOARD,
    "apiserver": apiserver.DASHBOARD,
    "audit-activity": audit_activity.DASHBOARD,
}
JSON_DIR = Path("dashboards")
RESOURCE_DIR = Path("config/components/observability/dashboards")


def outputs(root: Path) -> dict[Path, str]:
    """Every generated file under `root` with its content."""
    files: dict[Path, str] = {}
    for stem, dashboard in DASHBOARDS.items():
        files[root / JSON_DIR / f"{stem}.json"] = dashboard_json(dashboard)
        files[root / RESOURCE_DIR / f"grafana-dashboard-{stem}.yaml"] = resource_yaml(dashboard)
    return files


def stale(root: Path) -> list[Path]:
    """The generated files that are missing or differ from what the generator writes now."""
    return [p for p, text in outputs(root).items() if not p.is_file() or p.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m activity.devtools.dashboards.build", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale(args.root)
        for path in out_of_date:
            print(f"out of date: {path} (run python -m activity.devtools.dashboards.build)", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in outputs(args.root).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
