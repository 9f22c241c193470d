"""One `activity up` per data directory: an advisory lock on DIR/up.lock holding the owner's PID.

flock, not the file's existence: the kernel drops the lock when its process dies, so a crashed `up` never
leaves a stale lock behind; the PID is only there to name the owner in the error.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from activity.devtools.up.errors import UpError


class DataDirLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            data_dir = self.path.parent
            raise UpError(
                f"another `activity up` (PID {owner}) is already running on {data_dir}: stop it first (Ctrl-C in its "
                f"terminal, or `kill {owner}`), or give this one another --data-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None
