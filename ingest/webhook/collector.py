"""The cyclic garbage collector paused while EventLists are sorted.

Parsed whole, one EventList is ~50 objects per item, which with the default thresholds makes the collector run (and
walk them, and the heap) dozens of times per body; a JSON tree holds no cycles, so nothing there needs it.
`gc.disable` is for the whole process and bodies are sorted on the event loop and in a worker at once, so the
pauses are counted: the collector comes back (if it was on) when the last one ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_sorting = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _sorting, _was_enabled
    with _lock:
        if _sorting == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _sorting += 1
    try:
        yield
    finally:
        with _lock:
            _sorting -= 1
            if _sorting == 0 and _was_enabled:
                gc.enable()
