"""A real Prometheus (the `prometheus` binary, Debian's package) scraping a local `activity up`, for the dashboards'
preview and tests: panels' PromQL and the alert rules are evaluated by Prometheus itself, not by a look-alike.

It scrapes the three /metrics endpoints every second under the job names the ServiceMonitors give in a cluster
(the Service names), so the rules' `job="activity-apiserver"` selectors hold here too, and evaluates the rules
files it is given every second. Started on a free port with its data in a directory of the caller's; stopped by
its PID.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from activity.devtools.dashboards.metricnames import concrete
from activity.devtools.up.layout import HOST, Ports

JOBS = {"webhook": "activity-webhook", "apiserver": "activity-apiserver", "consumer": "activity-consumer"}
SCRAPE_SECONDS = 1
RATE_WINDOW = "15s"  # Grafana's $__rate_interval here: many scrapes, so a rate exists soon after the start
START_TIMEOUT_S = 60.0

Labels = frozenset[tuple[str, str]]


class PrometheusMissing(RuntimeError):
    """No `prometheus` binary on PATH."""


class QueryFailed(RuntimeError):
    """Prometheus refused or failed a query (the message is its own)."""


def binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise PrometheusMissing("prometheus is not installed (Debian/Ubuntu: apt-get install prometheus)")
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def scrape_config(ports: Ports, rule_files: Sequence[Path] = ()) -> dict[str, Any]:
    targets = {
        "webhook": f"{HOST}:{ports.webhook}",
        "apiserver": f"{HOST}:{ports.apiserver_metrics}",
        "consumer": f"{HOST}:{ports.consumer_probes}",
    }
    return {
        "global": {"scrape_interval": f"{SCRAPE_SECONDS}s", "evaluation_interval": f"{SCRAPE_SECONDS}s"},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": JOBS[part], "static_configs": [{"targets": [target]}]} for part, target in targets.items()
        ],
    }


@dataclass
class LocalPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def _get(self, path: str, **params: str) -> Any:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as err:  # 400/422: a query Prometheus refuses, with its reason
            body = json.load(err)
        if body.get("status") != "success":
            raise QueryFailed(f"{params.get('query', path)}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> dict[Labels, float]:
        """An instant query now; Grafana's variables in `expr` become a 15 s rate window and `.*`."""
        data = self._get("/api/v1/query", query=concrete(expr, RATE_WINDOW))
        if data["resultType"] == "scalar":
            return {frozenset(): float(data["result"][1])}
        return {
            frozenset((k, v) for k, v in item["metric"].items() if k != "__name__"): float(item["value"][1])
            for item in data["result"]
        }

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts pending or firing now, as Prometheus' /api/v1/alerts lists them."""
        return list(self._get("/api/v1/alerts")["alerts"])

    def targets_up(self) -> bool:
        active = self._get("/api/v1/targets")["activeTargets"]
        return len(active) == len(JOBS) and all(t["health"] == "up" for t in active)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(ports: Ports, workdir: Path, rule_files: Sequence[Path] = ()) -> LocalPrometheus:
    """Prometheus scraping the `activity up` on `ports`, ready (its targets up) when this returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(ports, rule_files), sort_keys=False))
    port = _free_port()
    log = workdir / "prometheus.log"
    command = [
        binary(),
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    prometheus = LocalPrometheus(f"http://{HOST}:{port}", process, log)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if prometheus.targets_up():
                return prometheus
        except (OSError, QueryFailed):
            pass  # not listening yet
        if time.monotonic() > deadline:
            prometheus.stop()
            raise RuntimeError(f"prometheus did not scrape every target in time:\n{log.read_text(errors='replace')}")
        time.sleep(0.5)


@contextmanager
def running(ports: Ports, workdir: Path, rule_files: Sequence[Path] = ()) -> Iterator[LocalPrometheus]:
    prometheus = start(ports, workdir, rule_files)
    try:
        yield prometheus
    finally:
        prometheus.stop()
