"""Waiting for something that happens asynchronously, with a deadline that names what never happened."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

# Generous: the suite shares two cores with whatever else the machine runs.
PATIENCE_S = 30.0


async def eventually(
    check: Callable[[], object | Awaitable[object]], what: str = "condition", within: float = PATIENCE_S
) -> None:
    """Poll `check` (sync or async) until it is truthy; fail the test naming `what` if it is not in time."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.03)
