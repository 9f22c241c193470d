"""The consumer loop: pull → screen → batch → (insert → ack, in the background) → pull again.

One batch fills while the previous one is being inserted, so pulling and inserting overlap; a replica holds at
most two batches unacked. While the store fails, no new pull is made: the failing batch is retried and the
messages held get +WPI in-progress acks so JetStream does not hand them to another replica meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from auditlog.storage import Store
from ingest.consumer.batch import Batch, Screened
from ingest.consumer.metrics import ConsumerMetrics
from ingest.consumer.puller import Ended, Puller
from ingest.consumer.settings import ConsumerSettings
from ingest.consumer.sink import Sink
from ingest.jetstream import DEAD_LETTER_SETTINGS, StreamSettings, ensure_stream

log = logging.getLogger(__name__)

# A batch this close to its age limit is flushed rather than given a pull request of a few milliseconds.
_AGE_SLACK_S = 0.005


class _OlderGCPasses:
    """The batches held are tens of thousands of tracked objects (messages, their header dicts) that every
    older-generation pass of the cyclic collector walks again, while each parsed event starts young passes: ~10%
    of the event loop's CPU, measured. While any consumer in the process runs, older passes are made 10x rarer
    (young garbage is collected as before; held messages are freed by reference counting once acked)."""

    SLOWDOWN = 10

    def __init__(self) -> None:
        self._users = 0
        self._saved = gc.get_threshold()

    @contextlib.contextmanager
    def rarer(self) -> Iterator[None]:
        if self._users == 0:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], *(t * self.SLOWDOWN for t in self._saved[1:]))
        self._users += 1
        try:
            yield
        finally:
            self._users -= 1
            if self._users == 0:
                gc.set_threshold(*self._saved)


_OLDER_GC_PASSES = _OlderGCPasses()


def consumer_config(settings: ConsumerSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=settings.durable,
        name=settings.durable,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait_s,
        max_ack_pending=settings.max_ack_pending,
        filter_subject=settings.filter_subject,
    )


class Consumer:
    """Moves audit events from a JetStream durable into the store. `run()` until `stop()`."""

    def __init__(
        self, settings: ConsumerSettings, nc: NATS, store: Store, metrics: ConsumerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ConsumerMetrics()
        self._nc = nc
        self._js = nc.jetstream()
        self._store = store
        self._sink = Sink(nc, self._js, store, settings, self.metrics)
        self._puller = Puller(nc, settings.stream, settings.durable, self._receive)
        self._batch = Batch()
        self._held: set[Batch] = set()  # batches whose messages are not acked yet
        self._stopping = asyncio.Event()
        self._closed = False  # the last batch is handed off: what arrives now is handed back unstored
        self._late: list[Msg] = []
        self._pulled = 0  # the puller's count already added to the pulled metric
        self.all_flushed = True  # False if shutdown gave up on a batch

    def stop(self) -> None:
        """Stop pulling, flush what is held (retrying a failing store for at most the shutdown grace), return."""
        if not self._stopping.is_set():
            log.info("stopping: flushing the current batch")
            self._stopping.set()
            self._sink.give_up_at = time.monotonic() + self.settings.shutdown_grace_s
            self._puller.cancel()

    async def run(self) -> None:
        if not await self._prepare():
            return
        await self._puller.start()
        try:
            async with asyncio.TaskGroup() as helpers:
                keeping = helpers.create_task(self._keep_in_progress())
                polling = helpers.create_task(self._poll_info())
                try:
                    with _OLDER_GC_PASSES.rarer():
                        await self._pull_loop()
                finally:  # the helpers loop for ever: they end with the pull loop
                    keeping.cancel()
                    polling.cancel()
        finally:
            await self._puller.stop()
            if self._late:
                await self._sink.nak(self._late)

    async def unready_reason(self) -> str | None:
        """Why the consumer is not doing its job right now, or None. A store that answers a ping but refuses every
        insert is not ready either: a batch held with no progress for `stall_after_s` says so."""
        if not self._nc.is_connected:
            return "NATS is disconnected"
        stalled = self._sink.stalled_for(time.monotonic())
        if stalled > self.settings.stall_after_s:
            return f"no batch stored for {stalled:.0f}s (the store keeps refusing inserts; see the log)"
        if not await self._store.ping():
            return "the store is not answering"
        return None

    async def _prepare(self) -> bool:
        """Dead-letter stream and durable consumer exist before the first pull. The events stream is created
        with defaults only if missing: its owner (the webhook, or NACK) sets its limits."""
        while True:
            try:
                log.info(await ensure_stream(self._js, DEAD_LETTER_SETTINGS))
                try:
                    await self._js.stream_info(self.settings.stream)
                except NotFoundError:
                    await self._js.add_stream(StreamSettings(name=self.settings.stream).config())
                    log.info("created stream %s with default limits", self.settings.stream)
                log.info(await self._ensure_consumer())
                return True
            except Exception as err:  # NATS not reachable yet or JetStream still recovering
                if self._stopping.is_set():
                    return False
                log.warning("setting up JetStream failed, retrying: %s", err)
                await asyncio.sleep(1.0)

    async def _ensure_consumer(self) -> str:
        wanted = consumer_config(self.settings)
        try:
            info = await self._js.consumer_info(self.settings.stream, self.settings.durable)
        except NotFoundError:
            await self._js.add_consumer(self.settings.stream, wanted)
            return f"created durable consumer {self.settings.durable}"
        have = info.config
        if (have.max_ack_pending, have.ack_wait, have.filter_subject) == (
            wanted.max_ack_pending,
            wanted.ack_wait,
            wanted.filter_subject,
        ):
            return f"durable consumer {self.settings.durable} is up to date"
        await self._js.add_consumer(self.settings.stream, wanted)
        return f"updated durable consumer {self.settings.durable}"

    def _receive(self, msg: Msg) -> None:
        if self._closed:
            self._late.append(msg)  # arrived after the last pull was cancelled: handed back for another replica
            return
        self._batch.add(msg)

    def _ready(self, batch: Batch, now: float) -> bool:
        if not batch.held:
            return False
        return (
            batch.byte_full
            or len(batch) >= self.settings.batch_events
            or batch.nbytes >= self.settings.batch_bytes
            or batch.age(now) >= self.settings.batch_age_s - _AGE_SLACK_S
        )

    async def _pull_loop(self) -> None:
        flushing: asyncio.Task[bool] | None = None
        while not self._stopping.is_set():
            now = time.monotonic()
            batch = self._batch
            if self._ready(batch, now):
                flushing = await self._hand_off(flushing)
                continue
            if flushing is not None and not self._sink.healthy:
                await flushing  # the store is failing: pull nothing more until the batch is in
                flushing = None
                continue
            await self._pull_once(batch, now)
        self._closed = True
        if self._batch.held:
            flushing = await self._hand_off(flushing)
        if flushing is not None:
            await flushing

    async def _pull_once(self, batch: Batch, now: float) -> None:
        if not self._nc.is_connected:
            # A request published now would wait in the client's buffer and reach the server with others after
            # the reconnect, each asking for a batch.
            await asyncio.sleep(0.1)
            return
        s = self.settings
        # A request never outlives the batch's age limit, counted from now if the batch is still empty: the
        # first message may come at once. So no request is left delivering into the next batch.
        expires = s.batch_age_s - batch.age(now)
        max_bytes: int | None = s.batch_bytes - batch.nbytes
        want = s.batch_events - len(batch)
        outcome = await self._puller.pull(want, expires, max_bytes)
        self._count_pulled()
        if outcome.ended is Ended.BYTES and outcome.delivered == 0:
            if batch.held:
                batch.byte_full = True
            else:  # one message bigger than a whole batch: take it alone, it will be dead-lettered as oversize
                outcome = await self._puller.pull(1, expires)
                self._count_pulled()
        self.metrics.pulls.labels(outcome.ended.value).inc()
        if outcome.ended in (Ended.UNAVAILABLE, Ended.LOST, Ended.REFUSED):
            log.warning("pull ended: %s %s", outcome.ended.value, outcome.description)
            # The durable may have been deleted under us (a pull for it then goes unanswered or is refused);
            # while NATS itself is away this just fails again.
            with contextlib.suppress(Exception):
                log.info(await self._ensure_consumer())
            await asyncio.sleep(0.5)  # NATS restarting, or JetStream electing a leader

    def _count_pulled(self) -> None:
        self.metrics.pulled.inc(self._puller.received - self._pulled)
        self._pulled = self._puller.received

    async def _hand_off(self, previous: asyncio.Task[bool] | None) -> asyncio.Task[bool]:
        """Close the current batch and start its flush once the previous one is done (two batches at most)."""
        batch, self._batch = self._batch, Batch()
        self._held.add(batch)
        self.metrics.batch_events.observe(len(batch))
        self.metrics.batch_bytes.observe(batch.nbytes)
        self.metrics.batch_age.observe(batch.age(time.monotonic()))
        # Screened now, while the previous batch is still being inserted (chdb releases the GIL): off the
        # insert → ack path that paces the consumer.
        screened = batch.screen(self.settings.stages, self.settings.max_event_bytes)
        # Counted once per batch: a metric update per message costs as much as screening it.
        self.metrics.redelivered.inc(screened.redelivered)
        for stage, count in screened.filtered.items():
            self.metrics.filtered.labels(stage).inc(count)
        if screened.pending is not None:
            self.metrics.pending.set(screened.pending)
        if previous is not None:
            await previous
        return asyncio.create_task(self._flush(batch, screened))

    async def _flush(self, batch: Batch, screened: Screened) -> bool:
        try:
            done = await self._sink.flush(batch.held, screened)
        finally:
            self._held.discard(batch)
        self.all_flushed = self.all_flushed and done
        return done

    async def _keep_in_progress(self) -> None:
        every = self.settings.in_progress_after_s
        while True:
            await asyncio.sleep(every / 2)
            now = time.monotonic()
            for batch in [*self._held, self._batch]:
                if batch.held and batch.age(now) >= every:
                    await self._sink.in_progress(batch.held)

    async def _poll_info(self) -> None:
        while True:
            try:
                info = await self._js.consumer_info(self.settings.stream, self.settings.durable)
                self.metrics.pending.set(info.num_pending or 0)
                self.metrics.ack_pending.set(info.num_ack_pending or 0)
                self.metrics.waiting.set(info.num_waiting or 0)
            except Exception as err:  # NATS away: the gauges keep their last value
                log.debug("consumer info: %s", err)
            await asyncio.sleep(self.settings.info_interval_s)
