"""The embedded store belongs to one process: claim its directory at start, or refuse in one line.

chdb opens a data directory in one process only (it locks the directory's `status` file when the engine starts),
but it starts the engine lazily, on the first statement: a second process would start "serving" and only fail
later, retrying forever or never becoming ready, with the reason a raw engine line on stderr. So every program
that opens a `chdb://` store first takes an flock on `activity.lock` in the directory, holding its PID, for as long
as it runs (the kernel drops it when the process dies, however it dies). Claims within one process nest: `activity
up` runs the API server and the consumer on one engine. A process that holds chdb's own lock without ours (a
Python session using chdb, an older version) is found through chdb's status file.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from auditlog.config import ConfigError, StoreConfig

LOCK_FILE = "activity.lock"
ENGINE_STATUS_FILE = "status"  # chdb's (ClickHouse's) own lock: "PID: 1234" on its first line

_held: dict[Path, tuple[int, int]] = {}  # directory -> (lock file descriptor, claims in this process)
_held_lock = threading.Lock()


class StoreInUse(ConfigError):
    """Another process holds the embedded store's directory."""


@dataclass(frozen=True)
class Holder:
    pid: int | None
    command: str  # its command line, "" when it cannot be known


def _pid_in(text: str) -> int | None:
    """The PID in our lock file ("1234") or in chdb's status file ("PID: 1234" first)."""
    first = (text.strip().splitlines() or [""])[0]
    value = first.split(":", 1)[1] if first.upper().startswith("PID:") else first
    try:
        return int(value.strip())
    except ValueError:
        return None


def _command(pid: int | None) -> str:
    if pid is None:
        return ""
    try:
        words = " ".join(psutil.Process(pid).cmdline()).split()
    except (psutil.Error, OSError):
        return ""
    return textwrap.shorten(" ".join(words), 200, placeholder=" …")  # one line, whatever the command holds


def _locked_by_other(path: Path) -> Holder | None:
    """Who holds an flock on `path`, if another process does (the file says the PID)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        pid = _pid_in(os.read(fd, 4096).decode(errors="replace"))
        if pid == os.getpid():
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return Holder(pid, _command(pid))
        return None  # free (a file left by a process that ended): closing the descriptor drops the probe's lock
    finally:
        os.close(fd)


def holder(directory: Path) -> Holder | None:
    """The other process using the store in `directory`, or None when it is free (or this process's own)."""
    for name in (LOCK_FILE, ENGINE_STATUS_FILE):
        found = _locked_by_other(directory / name)
        if found is not None:
            return found
    return None


def in_use_message(directory: Path, found: Holder) -> str:
    who = "another process"
    if found.pid is not None:
        who = f"process {found.pid}" + (f" ({found.command})" if found.command else "")
    return (
        f"the embedded store {directory} is in use by {who}: chdb opens a directory in one process only. "
        "Run the parts together with `activity up`, or give each separate process a ClickHouse server "
        "(--store http(s)://USER:PASSWORD@HOST:PORT/DATABASE)"
    )


def _acquire(directory: Path) -> None:
    with _held_lock:
        if directory in _held:
            fd, claims = _held[directory]
            _held[directory] = (fd, claims + 1)
            return
        directory.mkdir(parents=True, exist_ok=True)
        found = _locked_by_other(directory / ENGINE_STATUS_FILE)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if found is None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    found = _locked_by_other(directory / LOCK_FILE) or Holder(None, "")
            if found is not None:
                raise StoreInUse(in_use_message(directory, found))
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        _held[directory] = (fd, 1)


def _release(directory: Path) -> None:
    with _held_lock:
        fd, claims = _held[directory]
        if claims > 1:
            _held[directory] = (fd, claims - 1)
            return
        del _held[directory]
        os.close(fd)  # drops the flock; the stale PID in the file is harmless (nobody holds it)


@contextlib.contextmanager
def claim(config: StoreConfig) -> Iterator[None]:
    """Hold the embedded store's directory while the block runs; raise StoreInUse if another process holds it.
    A ClickHouse server store needs no claim (any number of processes may use it)."""
    if not config.embedded or config.path is None:
        yield
        return
    _acquire(config.path)
    try:
        yield
    finally:
        _release(config.path)
