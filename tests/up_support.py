"""`activity up` as a real subprocess for tests: started in a data directory on a free port range, ready when its
banner's first line arrives, queried with the real kubectl through the kubeconfig it wrote, stopped by signal.

Use `running_up(...)` as a context manager; it always ends the process (and so its nats-server child).
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import yaml

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from activity.devtools.up.banner import READY_LINE
from activity.devtools.up.demo import DemoTraffic
from activity.devtools.up.layout import HOST

UP_COMMAND = (sys.executable, "-m", "activity.cli", "up")
START_TIMEOUT_S = 90.0  # the machine is shared: generous, never asserted on


def free_port_base(count: int = 5) -> int:
    """A base with `count` consecutive ports free on HOST (random, so parallel tests rarely collide)."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000)
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sockets.append(sock)
                sock.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range found")


def process_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as ended)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def env_with_scripts_first(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment's scripts directory first on PATH: `activity` and `kubectl-activity` as installed here."""
    scripts = sysconfig.get_path("scripts")
    return {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}", **(extra or {})}


@dataclass
class UpProcess:
    data_dir: Path
    port_base: int
    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    _readers: list[threading.Thread] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for stream, sink in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            reader = threading.Thread(target=self._drain, args=(stream, sink), daemon=True)
            reader.start()
            self._readers.append(reader)

    @staticmethod
    def _drain(stream: Any, sink: list[str]) -> None:
        for line in stream:
            sink.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.stdout)

    @property
    def errors(self) -> str:
        return "\n".join(self.stderr)

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if READY_LINE in self.stdout:
                # the banner is printed in one write: wait for its last line too
                if any(line.startswith("Ctrl-C stops everything") for line in self.stdout):
                    return
            elif self.process.poll() is not None:
                self.finish()
                raise AssertionError(f"`activity up` exited {self.process.returncode}:\n{self.errors}")
            time.sleep(0.1)
        raise AssertionError(f"`activity up` not ready within {timeout}s:\n{self.output}\n{self.errors}")

    def finish(self, timeout: float = 60.0) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return code

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        return self.finish()

    @property
    def nats_pid(self) -> int:
        match = re.search(r"nats-server .*\(PID (\d+),", self.output)
        assert match, self.output
        return int(match[1])

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "kubeconfig"

    def banner_command(self, starting: str, having: str = "") -> str:
        """The banner's first suggested command line that starts with `starting` and holds `having`."""
        for line in self.stdout:
            if line.strip().startswith(starting) and having in line:
                return line.strip()
        raise AssertionError(f"no banner line starts with {starting!r}:\n{self.output}")

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The real kubectl with the kubeconfig `up` wrote, a private discovery cache, the plugin on PATH."""
        env = env_with_scripts_first(
            {"KUBECONFIG": str(self.kubeconfig), "KUBECACHEDIR": str(self.data_dir.parent / "kubecache")}
        )
        return subprocess.run(
            ["kubectl", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    def run_banner_command(self, starting: str, *extra: str, having: str = "") -> subprocess.CompletedProcess[str]:
        """The banner's suggested command that starts with `starting`, run verbatim (plus `extra` arguments)
        with nothing from the environment but PATH (this environment's scripts first) and a discovery cache."""
        argv = [*shlex.split(self.banner_command(starting, having)), *extra]
        env = {k: v for k, v in env_with_scripts_first().items() if k != "KUBECONFIG"}
        env["KUBECACHEDIR"] = str(self.data_dir.parent / "kubecache")
        return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)

    def query(self, spec: dict[str, Any]) -> dict[str, Any]:
        """`kubectl create -f -` of an AuditLogQuery with this spec; the created object."""
        obj = {"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec}
        done = self.kubectl("create", "--validate=false", "-f", "-", "-o", "json", stdin=yaml.safe_dump(obj))
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def events(self, start: str = "now-24h", end: str = "now", filter: str = "") -> list[dict[str, Any]]:
        """Every event of the window, all pages followed."""
        found: list[dict[str, Any]] = []
        spec: dict[str, Any] = {"startTime": start, "endTime": end, "limit": 1000, "filter": filter}
        while True:
            status = self.query(spec)["status"]
            found += status.get("results") or []
            if not status.get("continue"):
                return found
            spec["continue"] = status["continue"]

    def wait_for_events(
        self, enough: Callable[[list[dict[str, Any]]], bool], timeout: float = START_TIMEOUT_S, **window: str
    ) -> list[dict[str, Any]]:
        """The window's events once `enough` says so (or at the timeout, for the caller's assertion to fail)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(**window)
            if enough(found) or time.monotonic() > deadline:
                return found
            time.sleep(1.0)


def start_up(data_dir: Path, *args: str, port_base: int | None = None, env: dict[str, str] | None = None) -> UpProcess:
    base = free_port_base() if port_base is None else port_base
    process = subprocess.Popen(
        [*UP_COMMAND, "--data-dir", str(data_dir), "--port-base", str(base), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env or env_with_scripts_first(),
    )
    return UpProcess(data_dir, base, process)


def end(up: UpProcess) -> None:
    """Kill `up` if it still runs, and its nats-server child, which a killed `up` cannot end itself."""
    if up.process.poll() is None:
        up.process.kill()
        up.finish()
    nats = re.search(r"\(PID (\d+),", up.output)
    if nats and process_alive(int(nats[1])):
        os.kill(int(nats[1]), signal.SIGKILL)


@contextmanager
def running_up(data_dir: Path, *args: str, port_base: int | None = None) -> Iterator[UpProcess]:
    """`activity up` started and ready; ended at the end if the test did not stop it."""
    up = start_up(data_dir, *args, port_base=port_base)
    try:
        up.wait_ready()
        yield up
    finally:
        end(up)


def run_up(
    data_dir: Path, *args: str, port_base: int | None = None, env: dict[str, str] | None = None, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """`activity up` expected to exit by itself (a start-up error)."""
    base = free_port_base() if port_base is None else port_base
    return subprocess.run(
        [*UP_COMMAND, "--data-dir", str(data_dir), "--port-base", str(base), *args],
        capture_output=True,
        text=True,
        env=env or env_with_scripts_first(),
        timeout=timeout,
        check=False,
    )


def first_run_burst() -> set[str]:
    """The auditIDs of the ResponseComplete events the first demo run on a fresh data directory sends in its
    burst (they do not depend on the time)."""
    burst = DemoTraffic.starting(datetime.now(UTC), run=1).burst
    generator = EventGenerator(GeneratorSettings(seed=burst.seed, start=burst.start, step=burst.step))
    return {e["auditID"] for e in generator.events(burst.events // 2) if e["stage"] == "ResponseComplete"}


def burst_stored(sent: set[str]) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: sent <= {e["auditID"] for e in events}


def audit_ids(events: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(e["auditID"], e["stage"]) for e in events}
