"""Progress lines on stderr while pages stream: one line rewritten in place on a terminal, plain lines otherwise
(so logs of scripted runs keep them), never on stdout. At most one line a second (a fast scan of many pages
must not flood a log), and always the last one."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

INTERVAL = 1.0  # seconds between two progress lines


class Progress:
    def __init__(
        self, stream: IO[str] | None = None, *, interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval
        self.clock = clock
        self._shown = False
        self._last_line = ""
        self._last_time: float | None = None

    def update(self, line: str) -> None:
        now = self.clock()
        if self._last_time is not None and now - self._last_time < self.interval:
            return
        self._write(line)
        self._last_time = now

    def _write(self, line: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self._shown = True
        self._last_line = line
        self.stream.flush()

    def clear(self) -> None:
        """Before writing to stdout on the same terminal: the line the output will go on is the progress line."""
        if self.live and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._last_line = ""  # erased: `done` draws the last line again

    def done(self, final: str = "") -> None:
        """Shows `final` unless it is what the stream shows already, and ends the line on a terminal."""
        if final and (final != self._last_line or (self.live and not self._shown)):
            self._write(final)
        if self.live and self._shown:
            self.stream.write("\n")
            self.stream.flush()
