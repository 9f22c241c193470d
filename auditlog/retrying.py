"""The project's retry policy, on tenacity: bounded exponential backoff with jitter, retrying only the exceptions
that mean "the other side is away for now". Replicas retrying together spread out instead of stampeding."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import tenacity
from tenacity.wait import wait_base


@dataclass(frozen=True)
class Backoff:
    """The n-th wait (from 0) is `min(cap_s, initial_s * factor**n)`, of which the upper half is random ("equal
    jitter"): never below half the step, so a retry loop never spins, and never above the cap."""

    initial_s: float
    cap_s: float
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, retry: int) -> float:
        """The wait before retry number `retry` + 1."""
        try:
            step = min(self.cap_s, self.initial_s * self.factor**retry)
        except OverflowError:  # factor**retry beyond a float: the cap was reached long ago
            step = self.cap_s
        return step / 2 + self.rng.uniform(0, step / 2)


class _Wait(wait_base):
    def __init__(self, backoff: Backoff) -> None:
        self._backoff = backoff

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self._backoff.delay(retry_state.attempt_number - 1)


def retrying(
    transient: tuple[type[BaseException], ...],
    backoff: Backoff,
    *,
    attempts: int | None = None,
    before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
) -> tenacity.AsyncRetrying:
    """Calls `fn(*args)` through `await retrying(...)(fn, *args)`: retried while it raises one of `transient`,
    waiting as `backoff` says; any other exception goes straight out. After `attempts` calls (None: for ever) the
    last exception is raised as it was. `before_sleep` sees each failure and the wait chosen
    (`state.outcome`, `state.next_action.sleep`) before the wait, and may raise to end the retrying."""
    return tenacity.AsyncRetrying(
        retry=tenacity.retry_if_exception_type(transient),
        wait=_Wait(backoff),
        stop=tenacity.stop_after_attempt(attempts) if attempts is not None else tenacity.stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )
