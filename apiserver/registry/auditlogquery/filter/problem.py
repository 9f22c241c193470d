"""A filter the server will not run, and where in its text the trouble is."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    message: str
    line: int | None = None  # 1-based; columns count characters (code points), as the CEL parser reports them
    column: int | None = None

    @property
    def detail(self) -> str:
        return self.message if self.line is None else f"{self.line}:{self.column}: {self.message}"


class FilterRejected(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.detail for p in problems))
        self.problems = tuple(problems)


def line_column(offset: int, line_offsets: Sequence[int]) -> tuple[int, int]:
    """Line and column of a character offset; `line_offsets` are where lines 2, 3, ... start (CEL SourceInfo)."""
    line = bisect_right(line_offsets, offset)
    start = line_offsets[line - 1] if line else 0
    return line + 1, offset - start + 1
