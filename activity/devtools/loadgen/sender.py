"""Posting EventLists to an audit webhook the way kube-apiserver does: a few batches in flight, retries with a
bounded exponential backoff on 5xx/429 and connection errors (then the batch is dropped, as kube-apiserver drops
it), an optional events-per-second limit, and counters a progress callback can show while it runs.
"""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import aiohttp
import orjson
import tenacity

from activity.devtools.loadgen.batches import Batch, TrafficPlan, batches

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0
_KEPT_REJECTIONS = 5


@dataclass(frozen=True)
class Delivery:
    """How to send: where, how fast, and how hard to retry."""

    url: str
    rate: float = 0.0  # items per second; 0 sends as fast as the receiver answers
    concurrency: int = 4  # EventList POSTs in flight
    gzip: bool = False
    # kube-apiserver's webhook backoff: initial wait, x1.5 each time with 20% jitter, 5 attempts in all.
    attempts: int = 5
    initial_backoff_s: float = 0.5
    timeout_s: float = 30.0
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if self.rate < 0 or self.concurrency < 1 or self.attempts < 1:
            raise ValueError("rate must be >= 0, concurrency and attempts >= 1")


@dataclass(frozen=True)
class Progress:
    elapsed_s: float
    posted: int  # items in batches posted at least once
    acked: int  # items in batches the receiver answered 2xx
    dead_lettered: int
    retries: int
    failed: int  # items in batches given up on


@dataclass(frozen=True)
class LoadSummary:
    batches: int
    events: int  # valid events acknowledged by the receiver
    response_complete: int  # of which at stage ResponseComplete
    malformed: int  # malformed items acknowledged (the receiver dead-letters them)
    dead_lettered: int  # as the receiver reported, else the malformed items acknowledged
    retries: int
    failed_batches: int
    failed_items: int
    elapsed_s: float
    rejections: tuple[str, ...] = field(default=())  # the first few non-retried error answers

    @property
    def items(self) -> int:
        return self.events + self.malformed

    @property
    def rate(self) -> float:
        return self.items / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return self.failed_batches == 0


def reported_dead_letters(body: bytes) -> int | None:
    """The dead-letter count the receiver put in its answer, if it did (`{"deadLettered": N}`)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    value = answer.get("deadLettered") if isinstance(answer, dict) else None
    return value if isinstance(value, int) else None


class _Tally:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.batches = self.events = self.response_complete = self.malformed = 0
        self.posted = self.dead_lettered = self.retries = self.failed_batches = self.failed_items = 0
        self.rejections: list[str] = []

    def acked(self, batch: Batch, dead_lettered: int | None) -> None:
        self.batches += 1
        self.events += batch.events
        self.response_complete += batch.response_complete
        self.malformed += batch.malformed
        self.dead_lettered += batch.malformed if dead_lettered is None else dead_lettered

    def failed(self, batch: Batch, why: str) -> None:
        self.failed_batches += 1
        self.failed_items += batch.items
        if len(self.rejections) < _KEPT_REJECTIONS:
            self.rejections.append(why)

    def progress(self) -> Progress:
        return Progress(
            elapsed_s=time.monotonic() - self.started,
            posted=self.posted,
            acked=self.events + self.malformed,
            dead_lettered=self.dead_lettered,
            retries=self.retries,
            failed=self.failed_items,
        )

    def summary(self) -> LoadSummary:
        return LoadSummary(
            batches=self.batches,
            events=self.events,
            response_complete=self.response_complete,
            malformed=self.malformed,
            dead_lettered=self.dead_lettered,
            retries=self.retries,
            failed_batches=self.failed_batches,
            failed_items=self.failed_items,
            elapsed_s=time.monotonic() - self.started,
            rejections=tuple(self.rejections),
        )


class _Retried(Exception):
    """An answer kube-apiserver retries (5xx, 429) or a connection error; with the receiver's Retry-After, if any."""

    def __init__(self, why: str, retry_after: float | None = None) -> None:
        super().__init__(why)
        self.why = why
        self.retry_after = retry_after


class _Refused(Exception):
    """An error answer kube-apiserver does not retry."""


@dataclass(frozen=True)
class _Backoff:
    """tenacity's wait: the receiver's Retry-After when it sent one, else initial x1.5^n with 20% jitter."""

    initial_s: float
    jitter: random.Random = field(default_factory=random.Random)

    def __call__(self, state: tenacity.RetryCallState) -> float:
        err = state.outcome.exception() if state.outcome else None
        if isinstance(err, _Retried) and err.retry_after is not None:
            return err.retry_after
        return self.initial_s * 1.5 ** (state.attempt_number - 1) * self.jitter.uniform(1.0, 1.2)


async def _post_once(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The receiver's 2xx answer; raises _Retried or _Refused otherwise."""
    try:
        async with session.post(url, data=body, headers=headers) as response:
            answer = await response.read()
            if 200 <= response.status < 300:
                return answer
            why = f"HTTP {response.status}: {answer[:300].decode(errors='replace').strip()}"
            if response.status not in RETRIED_STATUSES:
                raise _Refused(why)
            header = response.headers.get("Retry-After", "")
            raise _Retried(why, min(float(header), MAX_RETRY_AFTER_S) if header.isdigit() else None)
    except (aiohttp.ClientError, TimeoutError) as err:
        raise _Retried(f"{type(err).__name__}: {err}") from err


async def _post(session: aiohttp.ClientSession, delivery: Delivery, batch: Batch, tally: _Tally) -> None:
    headers = {"Content-Type": "application/json"}
    body = batch.body
    if delivery.gzip:
        body = gzip.compress(body, compresslevel=1)
        headers["Content-Encoding"] = "gzip"
    tally.posted += batch.items

    def count_retry(_: tenacity.RetryCallState) -> None:
        tally.retries += 1

    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(delivery.attempts),
        wait=_Backoff(delivery.initial_backoff_s),
        retry=tenacity.retry_if_exception_type(_Retried),
        before_sleep=count_retry,
        reraise=True,
    )
    try:
        answer: bytes = await retrying(_post_once, session, delivery.url, body, headers)
    except _Refused as err:
        tally.failed(batch, str(err))
    except _Retried as err:
        tally.failed(batch, f"gave up after {delivery.attempts} attempts: {err.why}")
    else:
        tally.acked(batch, reported_dead_letters(answer))


async def post_batches(
    sequence: Iterable[Batch],
    delivery: Delivery,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every_s: float = 1.0,
) -> LoadSummary:
    """Send every batch (at most `delivery.concurrency` in flight, paced by `delivery.rate`)."""
    tally = _Tally()
    slots = asyncio.Semaphore(delivery.concurrency)
    in_flight: set[asyncio.Task[None]] = set()

    async def report() -> None:
        while on_progress is not None:
            await asyncio.sleep(progress_every_s)
            on_progress(tally.progress())

    async def one(session: aiohttp.ClientSession, batch: Batch) -> None:
        try:
            await _post(session, delivery, batch, tally)
        finally:
            slots.release()

    reporter = asyncio.create_task(report())
    connector = aiohttp.TCPConnector(limit=delivery.concurrency, ssl=delivery.verify_tls)
    timeout = aiohttp.ClientTimeout(total=delivery.timeout_s)
    submitted = 0
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        try:
            for batch in sequence:
                if delivery.rate:
                    due = tally.started + submitted / delivery.rate
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                await slots.acquire()
                task = asyncio.create_task(one(session, batch))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                submitted += batch.items
            await asyncio.gather(*in_flight)
        finally:
            # Cancelled (e.g. demo traffic stopping): end the POSTs in flight before their session closes.
            pending = [reporter, *in_flight]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
    return tally.summary()


async def send(
    plan: TrafficPlan,
    delivery: Delivery,
    on_progress: Callable[[Progress], None] | None = None,
) -> LoadSummary:
    """Generate the plan's traffic and post it: what `activity loadgen` runs, callable in-process too."""
    if delivery.rate:
        # A batch holds at most a second of traffic, so a slow rate still arrives steadily (kube-apiserver
        # flushes a partial batch after its max wait).
        plan = replace(plan, batch=max(1, min(plan.batch, int(delivery.rate))))
    return await post_batches(batches(plan), delivery, on_progress)
