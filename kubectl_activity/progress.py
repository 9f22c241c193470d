"""Progress lines on stderr while pages stream: one line rewritten in place on a terminal, plain lines otherwise
(so logs of scripted runs keep them), never on stdout."""

from __future__ import annotations

import sys
from typing import IO


class Progress:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self._shown = False

    def update(self, line: str) -> None:
        if self.live:
            self.stream.write("\r\033[K" + line)
        else:
            self.stream.write(line + "\n")
        self._shown = True
        self.stream.flush()

    def clear(self) -> None:
        """Before writing to stdout on the same terminal: the line the output will go on is the progress line."""
        if self.live and self._shown:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def done(self) -> None:
        if self.live and self._shown:
            self.stream.write("\n")
            self.stream.flush()
