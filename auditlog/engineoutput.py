"""What the embedded engine prints goes into our logs, so `--logging-format json` stays one JSON object a line.

chdb (ClickHouse's C++ code) writes its messages straight to file descriptor 2, past Python's `sys.stderr`. Once
`capture()` ran, descriptor 2 is a pipe: a thread reads it and logs each line (logger `engine`, level WARNING),
while `sys.stderr` (and so our log handlers and tracebacks) writes to a duplicate of the original descriptor.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

LOGGER = "engine"

_started = threading.Lock()
_captured = False


def _pump(read_fd: int, logger: logging.Logger) -> None:
    pending = b""
    while chunk := os.read(read_fd, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            if line.strip():
                logger.warning("%s", line.decode(errors="replace").rstrip())
    if pending.strip():
        logger.warning("%s", pending.decode(errors="replace").rstrip())


def capture() -> None:
    """Route descriptor 2 into the `engine` logger for the rest of the process (once; later calls do nothing)."""
    global _captured
    with _started:
        if _captured:
            return
        _captured = True
        sys.stderr.flush()
        original = os.dup(2)
        read_fd, write_fd = os.pipe()
        os.dup2(write_fd, 2)
        os.close(write_fd)
        previous = sys.stderr
        sys.stderr = open(original, "w", buffering=1, encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is previous:
                handler.setStream(sys.stderr)
        threading.Thread(
            target=_pump, args=(read_fd, logging.getLogger(LOGGER)), name="engine-output", daemon=True
        ).start()
