"""The end of the line for a batch: dead-letter what can never be stored, insert the rest, and only then ack.

Rows go in as groups of whole days (`partitions`). What a failed insert means is read from the error itself
(`auditlog.storeerrors`): an outage of the store is retried (`auditlog.retrying`) for as long as it takes, nothing
acked and nothing new pulled meanwhile; rows the store refuses for their content are isolated by halving the chunk
and dead-lettered, so one row never blocks the stream; an insert too wide for the store's partition limit is split
by day, and nothing is dead-lettered for it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NoStreamResponseError
from tenacity import RetryCallState

from auditlog.retrying import Backoff, retrying
from auditlog.storage import Store, StoreError
from auditlog.storeerrors import InsertFailure, classify
from ingest.consumer.batch import Screened
from ingest.consumer.metrics import ConsumerMetrics
from ingest.consumer.partitions import by_partition, halves
from ingest.consumer.puller import delivery
from ingest.consumer.screening import Poison, Row
from ingest.consumer.settings import ConsumerSettings
from ingest.deadletter import INSERT_REJECTED
from ingest.jetstream import (
    DEAD_LETTER_SETTINGS,
    MSG_ID_HEADER,
    SUBJECT_PREFIX,
    dead_letter,
    dead_letter_subject,
    ensure_stream,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
A = TypeVar("A")
SOURCE = "consumer"

# What a JetStream publish or a store call raises when the other side is away for now.
_TRANSIENT = (StoreError, nats.errors.Error, TimeoutError, OSError)


class DataRejected(Exception):
    """The store refused these rows for their content."""


class TooWide(Exception):
    """The store refused this insert for the number of partitions it spans (its limit is below ours): `halves`
    are the same rows as two inserts of half the days each."""

    def __init__(self, halves: tuple[list[tuple[Msg, Row]], list[tuple[Msg, Row]]]) -> None:
        super().__init__()
        self.halves = halves


class GaveUp(Exception):
    """Shutting down, and the store (or NATS) did not come back within the grace time."""


def _day(row: tuple[Msg, Row]) -> str:
    return row[1].day


def cluster_of(subject: str) -> str:
    prefix = SUBJECT_PREFIX + "."
    return subject[len(prefix) :] if subject.startswith(prefix) and len(subject) > len(prefix) else "unknown"


class Sink:
    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        store: Store,
        settings: ConsumerSettings,
        metrics: ConsumerMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self._nc, self._js, self._store = nc, js, store
        self._settings, self._metrics = settings, metrics
        self._backoff = Backoff(settings.backoff_initial_s, settings.backoff_max_s, rng=rng or random.Random())
        self.healthy = True  # False while a batch waits for the store or NATS to come back
        self.give_up_at: float | None = None  # monotonic; set on shutdown to bound the retrying
        self.flushing = False  # a batch is being stored
        self.progressed_at = time.monotonic()  # the last batch started, rows inserted or dead-lettered, or acks

    def stalled_for(self, now: float) -> float:
        """How long a batch has been held without any progress (0 when none is held)."""
        return now - self.progressed_at if self.flushing else 0.0

    async def flush(self, messages: Sequence[Msg], screened: Screened) -> bool:
        """Store a batch and ack every message of it; False when given up (the messages are handed back)."""
        self.flushing, self.progressed_at = True, time.monotonic()
        try:
            if screened.poison:
                await self._retrying("dead-letter", self._dead_letter, screened.poison)
            await self._insert(screened.rows)
        except GaveUp:
            log.error("giving up on a batch of %d messages; they will be redelivered", len(messages))
            await self.nak(messages)
            return False
        finally:
            self.flushing = False
        await self._reply(messages, Msg.Ack.Ack)
        self._metrics.acked.inc(len(messages))
        self.progressed_at = time.monotonic()
        return True

    async def in_progress(self, messages: Sequence[Msg]) -> None:
        """Tell the server these are still being worked on, so it does not redeliver them elsewhere."""
        await self._reply(messages, Msg.Ack.Progress)

    async def nak(self, messages: Sequence[Msg]) -> None:
        """Hand messages back unstored: JetStream redelivers them at once (to another replica, or after restart)."""
        await self._reply(messages, Msg.Ack.Nak)
        self._metrics.nacked.inc(len(messages))

    async def _reply(self, messages: Sequence[Msg], ack: bytes) -> None:
        # Each message is acked on its own: replicas share the durable, so an AckAll could ack theirs.
        try:
            for msg in messages:
                if msg.reply:
                    await self._nc.publish(msg.reply, ack)
            await self._nc.flush(timeout=5)
        except Exception as err:  # disconnected: unacked messages are redelivered, and reads dedupe them
            log.warning("could not send %d %s: %s", len(messages), ack.decode(), err)

    async def _insert(self, rows: list[tuple[Msg, Row]]) -> None:
        chunks = deque(by_partition(rows, _day, self._settings.max_partitions_per_insert))
        while chunks:
            chunk = chunks[0]
            try:
                await self._retrying("insert", self._insert_chunk, chunk)
            except TooWide as narrower:
                chunks.popleft()
                chunks.extendleft(reversed(narrower.halves))
                continue
            except DataRejected as err:
                chunks.popleft()
                if len(chunk) == 1:
                    rejected = [(chunk[0][0], Poison(INSERT_REJECTED, str(err)))]
                    await self._retrying("dead-letter", self._dead_letter, rejected)
                else:
                    half = len(chunk) // 2
                    chunks.appendleft(chunk[half:])
                    chunks.appendleft(chunk[:half])
                continue
            chunks.popleft()

    async def _insert_chunk(self, chunk: list[tuple[Msg, Row]]) -> None:
        started = time.perf_counter()
        try:
            await self._store.insert_events([row.json for _, row in chunk])
        except StoreError as err:
            failure = classify(str(err))
            if failure is InsertFailure.DATA:
                self._metrics.store_errors.labels("data").inc()
                raise DataRejected(str(err)[:400]) from err
            split = halves(chunk, _day) if failure is InsertFailure.TOO_WIDE else None
            if split is not None:
                self._metrics.store_errors.labels("too_wide").inc()
                raise TooWide(split) from err
            self._metrics.store_errors.labels("transient").inc()
            raise
        self._metrics.insert_latency.observe(time.perf_counter() - started)
        self._metrics.inserted.inc(len(chunk))
        self._metrics.observe_stored(row.json for _, row in chunk)
        self.progressed_at = time.monotonic()

    async def _dead_letter(self, poison: Sequence[tuple[Msg, Poison]]) -> None:
        async def one(msg: Msg, why: Poison) -> None:
            body, headers = dead_letter(msg.data, reason=why.header, source=SOURCE, original_subject=msg.subject)
            where = delivery(msg.reply) if msg.reply else None
            if where is not None:  # a redelivered poison message is dead-lettered once (duplicate window)
                headers[MSG_ID_HEADER] = f"{SOURCE}-{self._settings.stream}-{where.stream_seq}"
            await self._js.publish(dead_letter_subject(SOURCE, cluster_of(msg.subject)), body, headers=headers)

        try:
            await asyncio.gather(*(one(m, p) for m, p in poison))
        except NoStreamResponseError:
            await ensure_stream(self._js, DEAD_LETTER_SETTINGS)  # deleted under us: back before the retry
            raise
        for _, why in poison:
            self._metrics.dead_lettered.labels(why.reason).inc()
        self.progressed_at = time.monotonic()

    async def _retrying(self, what: str, attempt: Callable[[A], Awaitable[T]], arg: A) -> T:
        """`attempt(arg)` until it succeeds, however long the store (or NATS) is away, or until shutdown's grace
        time would run out during the next wait (GaveUp). Any other failure is the caller's to handle."""

        def before_sleep(state: RetryCallState) -> None:
            err = state.outcome.exception() if state.outcome is not None else None
            delay = state.next_action.sleep if state.next_action is not None else 0.0
            if self.give_up_at is not None and time.monotonic() + delay > self.give_up_at:
                raise GaveUp from err
            if self.healthy:
                log.warning("%s failed, retrying with backoff: %s", what, err)
            self.healthy = False
            self._metrics.backing_off.set(1)
            self._metrics.backoff_seconds.inc(delay)

        result: T = await retrying(_TRANSIENT, self._backoff, before_sleep=before_sleep)(attempt, arg)
        if not self.healthy:
            log.info("%s works again", what)
        self.healthy = True
        self._metrics.backing_off.set(0)
        return result
