"""`activity bench plugin`: the kubectl plugin's start-up cost, i.e. its wall time minus the server's time.

An in-process API server over a small embedded store; the plugin runs as its installed console script, as kubectl
execs it. The server's share comes from its request-duration histogram, so what is left is the plugin's own
(interpreter, imports, kubeconfig, TLS, printing). Targets and results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import orjson
import yaml

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from apiserver.auth.authconfig import AuthSettings
from apiserver.auth.authorize import Mode
from apiserver.machinery.certs import CertificateAuthority
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.server.apiserver import ApiServerHandle, start_apiserver
from apiserver.server.options import ApiServerSettings
from auditlog.config import parse_store_dsn
from auditlog.schema import migrate

T = TypeVar("T")
TARGET_S = 0.3
# name -> the plugin's arguments
COMMANDS: dict[str, tuple[str, ...]] = {"help": ("--help",), "query": ("query",), "json": ("query", "-o", "json")}
ENTRY = "import sys\nfrom kubectl_activity.cli import main\nsys.exit(main())"  # what the console script runs
_SUM = re.compile(r"^apiserver_request_duration_seconds_sum\{[^}]*\} (\S+)$", re.MULTILINE)


@dataclass(frozen=True)
class Row:
    command: str
    wall: tuple[float, ...]
    server: tuple[float, ...]
    imports_s: float

    @property
    def overheads(self) -> list[float]:
        return [w - s for w, s in zip(self.wall, self.server, strict=True)]

    @property
    def overhead(self) -> float:
        return statistics.median(self.overheads)


class ServerThread:
    """The API server on an event loop of its own, so the plugin's subprocess can be timed synchronously."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="bench-apiserver", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def plugin_command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = shutil.which("kubectl-activity", path=sysconfig.get_path("scripts") + os.pathsep + os.environ["PATH"])
    if script:
        return [script]
    return [sys.executable, "-c", ENTRY]


def _top_level_imports(argv: Sequence[str], env: dict[str, str]) -> dict[str, int]:
    """module -> cumulative microseconds, for the imports made at the top level of the run."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    found = {}
    for line in done.stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and len(parts[2]) - len(parts[2].lstrip()) == 1:
            found[parts[2].strip()] = int(parts[1])
    return found


def import_seconds(args: Sequence[str], env: dict[str, str]) -> float:
    """What the plugin's own imports cost for this command (python -X importtime over the real run), without
    the interpreter's start-up imports (those of `python -c pass`)."""
    baseline = _top_level_imports(["-c", "pass"], env)
    run = _top_level_imports(["-c", ENTRY, *args], env)
    return sum(us for module, us in run.items() if module not in baseline) / 1e6


def server_seconds(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    return sum(float(value) for value in _SUM.findall(text))


def _kubeconfig(directory: Path, ca: CertificateAuthority, port: int) -> Path:
    cert, key = ca.issue_client("bench", ["system:masters"]).write(directory, "client")
    path = directory / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "bench",
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "certificate-authority": str(directory / "ca.crt"),
                        },
                    }
                ],
                "users": [{"name": "bench", "user": {"client-certificate": str(cert), "client-key": str(key)}}],
                "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
                "current-context": "bench",
            }
        )
    )
    return path


def measure(directory: Path, events: int, iterations: int, commands: Sequence[str], say: Any = print) -> list[Row]:
    dsn = f"chdb://{directory / 'store'}"
    migrate(parse_store_dsn(dsn), retention_days=0)
    ca = CertificateAuthority("activity-bench-ca")
    (directory / "ca.crt").write_bytes(ca.cert_pem)
    cert, key = ca.issue_serving(["localhost", "127.0.0.1"]).write(directory, "serving")
    settings = ApiServerSettings(
        query=QuerySettings(cursor_key=os.urandom(32)),
        auth=AuthSettings(client_ca_file=directory / "ca.crt", authorization_mode=Mode.ALWAYS_ALLOW),
        bind_address="127.0.0.1",
        secure_port=0,
        metrics_port=0,
        tls_cert_file=cert,
        tls_private_key_file=key,
    )
    thread = ServerThread()
    handle: ApiServerHandle = thread.run(start_apiserver(settings, parse_store_dsn(dsn)))
    try:
        start = datetime.now(UTC) - timedelta(hours=1)
        generated = EventGenerator(GeneratorSettings(seed=7, start=start)).events(max(1, events // 2))
        thread.run(handle.store.insert_events([orjson.dumps(e) for e in generated]))
        env = os.environ | {"KUBECONFIG": str(_kubeconfig(directory, ca, handle.port))}
        metrics = f"http://127.0.0.1:{handle.metrics_port}/metrics"
        base = plugin_command()
        rows = []
        for name in commands:
            subprocess.run([*base, *COMMANDS[name]], env=env, capture_output=True, check=True, timeout=120)  # warm
            walls, servers = [], []
            for _ in range(iterations):
                before = server_seconds(metrics)
                started = time.perf_counter()
                subprocess.run([*base, *COMMANDS[name]], env=env, capture_output=True, check=True, timeout=120)
                walls.append(time.perf_counter() - started)
                servers.append(server_seconds(metrics) - before)
            rows.append(Row(name, tuple(walls), tuple(servers), import_seconds(COMMANDS[name], env)))
            say(_line(rows[-1]))
        return rows
    finally:
        thread.run(handle.stop())
        thread.close()


def _line(row: Row) -> str:
    mark = "ok" if row.overhead <= TARGET_S else "MISSED"
    return (
        f"| `{' '.join(COMMANDS[row.command])}` | {statistics.median(row.wall):.3f} | "
        f"{statistics.median(row.server):.3f} | {row.overhead:.3f} | {min(row.overheads):.3f} | {row.imports_s:.3f} | "
        f"{mark} |"
    )


def report(rows: Sequence[Row], events: int, iterations: int) -> list[str]:
    return [
        f"{events} events stored; median of {iterations} runs per command (after one warm-up run), and the fastest "
        f"run's plugin time (the least disturbed by other load); load average {os.getloadavg()[0]:.1f}. Seconds; "
        f"plugin = wall - server; imports = the plugin's own imports (python -X importtime); target: plugin <= "
        f"{TARGET_S} s.",
        "",
        "| command | wall | server | plugin | plugin (fastest) | imports | target |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *(_line(row) for row in rows),
    ]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=300, help="events in the store")
    parser.add_argument("--iterations", type=int, default=5, help="runs per command")
    parser.add_argument(
        "--only", action="append", choices=sorted(COMMANDS), help="measure only this command (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (50 events, 1 run per command): a smoke run")


def run(args: argparse.Namespace) -> int:
    if args.quick:
        args.events, args.iterations = 50, 1
    if args.events < 1 or args.iterations < 1:
        print("error: --events and --iterations must be positive", file=sys.stderr)
        return 2
    commands = args.only or list(COMMANDS)
    with tempfile.TemporaryDirectory(prefix="activity-bench-plugin-") as scratch:
        rows = measure(Path(scratch), args.events, args.iterations, commands, say=lambda _: None)
    print("\n## Plugin start-up\n")
    print("\n".join(report(rows, args.events, args.iterations)))
    return 0
