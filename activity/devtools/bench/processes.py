"""Child processes of a benchmark: our programs started as users start them, and their resident memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil
from prometheus_client.parser import text_string_to_metric_families


def start_activity(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`activity ARGS...` in a child process, output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "activity.cli", *args], stdout=out, stderr=subprocess.STDOUT)


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_http_ok(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {timeout_s:g}s")


def sample_value(exposition: str, name: str, **labels: str) -> float | None:
    """The sample `name` with exactly `labels` in a Prometheus text exposition; None when it has none."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def metric_value(url: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus /metrics page (e.g. `errors_total`, kind="transient"); 0 when absent or down."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return 0.0
    found = sample_value(text, name, **labels)
    return 0.0 if found is None else found


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process."""
    return int(psutil.Process(pid).memory_info().rss)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used, all its threads; 0 if it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return float(times.user + times.system)


@dataclass(frozen=True)
class RssTrace:
    samples: tuple[int, ...]  # bytes, one per interval

    @property
    def max(self) -> int:
        return max(self.samples)

    @property
    def growth(self) -> int:
        """How much higher the second half peaks than the first: ~0 when memory is flat."""
        half = len(self.samples) // 2
        return max(self.samples[half:]) - max(self.samples[: max(half, 1)])

    def flat(self, tolerance: float = 0.05, slack_bytes: int = 4 << 20) -> bool:
        half = len(self.samples) // 2
        return self.growth <= max(self.samples[: max(half, 1)]) * tolerance + slack_bytes


def sample_rss(pid: int, seconds: float, every_s: float = 0.25) -> RssTrace:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(rss_bytes(pid))
        time.sleep(every_s)
    return RssTrace(tuple(samples))


def load_average() -> float:
    return os.getloadavg()[0]
