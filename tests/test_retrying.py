"""The project's retry policy (auditlog.retrying): bounded exponential backoff with jitter, on tenacity."""

from __future__ import annotations

import random

import pytest
import tenacity
from hypothesis import given
from hypothesis import strategies as st

from auditlog.retrying import Backoff, retrying


@given(
    st.floats(0.01, 1.0),
    st.floats(1.0, 30.0),
    st.sampled_from([1.5, 2.0, 3.0]),
    st.integers(0, 2**32),
    st.integers(0, 100_000),
)
def test_every_wait_is_within_half_and_all_of_its_capped_step(
    initial: float, cap: float, factor: float, seed: int, retry: int
) -> None:
    backoff = Backoff(initial, cap, factor, random.Random(seed))
    try:
        step = min(cap, initial * factor**retry)
    except OverflowError:
        step = cap
    assert step / 2 <= backoff.delay(retry) <= step


def test_an_outage_of_thousands_of_retries_keeps_waiting_at_the_cap() -> None:
    # 2.0 ** 1024 is beyond a float: a days-long store outage must not end the retrying with an OverflowError.
    backoff = Backoff(0.2, 30.0)
    assert all(15.0 <= backoff.delay(n) <= 30.0 for n in (1023, 1024, 5000, 10**9))


class Away(ConnectionError):
    pass


async def test_transient_failures_are_retried_with_growing_waits_until_success() -> None:
    calls: list[int] = []
    waits: list[float] = []

    async def flaky(n: int) -> str:
        calls.append(n)
        if len(calls) < 5:
            raise Away("not yet")
        return "stored"

    def seen(state: tenacity.RetryCallState) -> None:
        assert state.outcome is not None and isinstance(state.outcome.exception(), Away)
        assert state.next_action is not None
        waits.append(state.next_action.sleep)

    backoff = Backoff(0.001, 0.004, rng=random.Random(7))
    assert await retrying((Away,), backoff, before_sleep=seen)(flaky, 3) == "stored"
    assert calls == [3] * 5
    steps = [0.001, 0.002, 0.004, 0.004]  # the cap holds from the third wait on
    assert len(waits) == 4 and all(s / 2 <= w <= s for w, s in zip(waits, steps, strict=True))


async def test_an_error_that_is_not_transient_goes_straight_out() -> None:
    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("row 3: cannot parse")

    with pytest.raises(ValueError, match="row 3"):
        await retrying((Away,), Backoff(0.001, 0.001))(refused)
    assert calls == 1


async def test_after_the_last_attempt_the_last_error_is_raised_as_it_was() -> None:
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise Away(f"attempt {calls}")

    with pytest.raises(Away, match="attempt 3"):
        await retrying((Away,), Backoff(0.001, 0.001), attempts=3)(down)
    assert calls == 3


async def test_before_sleep_can_end_the_retrying_with_its_own_error() -> None:
    class GaveUp(Exception):
        pass

    def give_up(state: tenacity.RetryCallState) -> None:
        raise GaveUp

    async def down() -> None:
        raise Away

    with pytest.raises(GaveUp):
        await retrying((Away,), Backoff(10.0, 10.0), before_sleep=give_up)(down)  # no 10 s wait: it ends first
