"""A nats-server left behind by an `up` that was killed outright (SIGKILL, OOM): the child runs in its own
session, so it outlives its parent and keeps the JetStream directory and port. The next `up`, holding the data
directory lock (so no live `up` owns the child), ends it before starting its own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from pathlib import Path

import psutil

log = logging.getLogger(__name__)


def _command_line(pid: int) -> list[str]:
    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:  # gone, a zombie, or not ours to read
        return []


def _alive(pid: int) -> bool:
    return bool(_command_line(pid))  # a zombie has an empty command line


def record(pidfile: Path, pid: int) -> None:
    pidfile.write_text(f"{pid}\n")


def end_orphan(pidfile: Path, store_dir: Path, timeout: float = 10.0) -> int | None:
    """End the nats-server `pidfile` names if it still serves `store_dir`; its PID when one was ended."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    argv = _command_line(pid)
    # the PID may have been reused since: only a nats-server on this very directory is ours
    if not argv or not Path(argv[0]).name.startswith("nats-server") or str(store_dir) not in argv:
        pidfile.unlink(missing_ok=True)
        return None
    log.warning("ending nats-server PID %d left running on %s by an `up` that did not stop cleanly", pid, store_dir)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return pid
