"""Where `activity up` keeps things: the files in the data directory and the ports counted from --port-base."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DEFAULT_DATA_DIR = Path("activity-data")
DEFAULT_PORT_BASE = 8090  # the webhook keeps `activity webhook`'s default port
HOST = "127.0.0.1"  # a laptop stack: nothing listens beyond this machine


@dataclass(frozen=True)
class Ports:
    """Five consecutive ports: the two people type first, then the ones only tools use."""

    base: int = DEFAULT_PORT_BASE

    def __post_init__(self) -> None:
        if not 1 <= self.base <= 65535 - 4:
            raise ValueError(f"--port-base {self.base} must be between 1 and 65531 (five ports are used from it)")

    @property
    def webhook(self) -> int:
        return self.base

    @property
    def apiserver(self) -> int:
        return self.base + 1

    @property
    def nats(self) -> int:
        return self.base + 2

    @property
    def apiserver_metrics(self) -> int:
        return self.base + 3

    @property
    def consumer_probes(self) -> int:
        return self.base + 4

    def named(self) -> dict[str, int]:
        return {
            "webhook": self.webhook,
            "API server": self.apiserver,
            "nats-server": self.nats,
            "API server metrics": self.apiserver_metrics,
            "consumer probes": self.consumer_probes,
        }


@dataclass(frozen=True)
class DataDir:
    root: Path  # absolute

    @property
    def nats(self) -> Path:
        return self.root / "nats"

    @property
    def nats_pid(self) -> Path:
        """The running nats-server child's PID, so the next `up` can end it if this one is killed outright."""
        return self.root / "nats-server.pid"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def store_dsn(self) -> str:
        return f"chdb://{quote(str(self.store))}"  # a '#', '?' or '%' in the path stays part of it

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def demo_runs(self) -> Path:
        return self.root / "demo-runs"

    @property
    def lock(self) -> Path:
        return self.root / "up.lock"

    @property
    def log(self) -> Path:
        return self.root / "activity.log"
