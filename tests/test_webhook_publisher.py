"""The pipelined publisher on a real nats-server: each batch's PubAcks are counted to it alone, a refusal fails only
its batch, and the in-flight window is always given back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import StreamConfig

from activity.devtools.natsd import NatsServer
from ingest.jetstream import MSG_ID_HEADER
from ingest.webhook.messages import Outgoing
from ingest.webhook.publisher import JetStreamUnavailable, PipelinedPublisher

SUBJECT = "audit.k8s.test"


def messages(prefix: str, count: int, size: int = 16) -> list[Outgoing]:
    return [Outgoing(SUBJECT, b"x" * size, {MSG_ID_HEADER: f"{prefix}-{i}"}) for i in range(count)]


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NATS]:
    client = await nats.connect(nats_server.url)
    await client.jetstream().add_stream(StreamConfig(name="EVENTS", subjects=["audit.k8s.>"], max_msg_size=1024))
    try:
        yield client
    finally:
        await client.close()


async def started(nc: NATS, max_in_flight: int = 8, timeout_s: float = 5.0) -> PipelinedPublisher:
    publisher = PipelinedPublisher(nc, batch_timeout_s=timeout_s, max_in_flight=max_in_flight)
    await publisher.start()
    return publisher


async def stored(nc: NATS) -> int:
    return int((await nc.jetstream().stream_info("EVENTS")).state.messages)


async def test_concurrent_batches_through_a_small_window_are_all_stored_and_counted_apart(nc: NATS) -> None:
    publisher = await started(nc, max_in_flight=8)
    batches = [messages(f"b{n}", 50 + n) for n in range(6)]
    outcomes = await asyncio.gather(*(publisher.publish(batch) for batch in batches))
    assert [o.stored for o in outcomes] == [len(b) for b in batches]
    assert await stored(nc) == sum(map(len, batches))
    assert publisher.in_flight == 0
    await publisher.stop()


async def test_duplicates_are_counted_per_batch(nc: NATS) -> None:
    publisher = await started(nc)
    first = messages("same", 20)
    assert (await publisher.publish(first)).duplicates == 0
    again, fresh = await asyncio.gather(publisher.publish(first[:15]), publisher.publish(messages("new", 5)))
    assert (again.stored, again.duplicates) == (15, 15)
    assert (fresh.stored, fresh.duplicates) == (5, 0)
    assert await stored(nc) == 25
    await publisher.stop()


async def test_a_refused_message_fails_its_batch_only_and_frees_the_window(nc: NATS) -> None:
    publisher = await started(nc, max_in_flight=16)
    refused = [*messages("ok", 10), *messages("big", 1, size=4096), *messages("after", 10)]
    results = await asyncio.gather(
        publisher.publish(refused), publisher.publish(messages("good", 30)), return_exceptions=True
    )
    assert isinstance(results[0], JetStreamUnavailable) and "refused a message" in str(results[0])
    assert not isinstance(results[1], BaseException) and results[1].stored == 30
    await asyncio.sleep(0.2)  # late PubAcks of the failed batch are ignored, not counted twice
    assert publisher.in_flight == 0
    assert (await publisher.publish(messages("later", 40))).stored == 40
    await publisher.stop()


async def test_no_stream_for_the_subject_is_unavailable_at_once(nc: NATS) -> None:
    publisher = await started(nc)
    lost = [Outgoing("nowhere.at.all", b"x", {MSG_ID_HEADER: "n-1"})]
    with pytest.raises(JetStreamUnavailable, match="no responders"):
        await asyncio.wait_for(publisher.publish(lost), 2.0)
    assert publisher.in_flight == 0
    await publisher.stop()


class _StallsBeforeTheLastPubAck(PipelinedPublisher):
    """A loop stalled (by any other work) past the batch deadline while the last PubAck waits to be counted: the
    deadline and the PubAck then land in the same turn of the loop, the PubAck first."""

    def __init__(self, nc: NATS, stall_s: float) -> None:
        super().__init__(nc, batch_timeout_s=stall_s / 2, max_in_flight=1000)
        self._stall_s = stall_s

    async def _on_reply(self, msg: Msg) -> None:
        if all(batch.remaining == 1 for batch in self._pending.values()):
            time.sleep(self._stall_s)  # noqa: ASYNC251 - blocks the loop on purpose, as a heavy request would
            await asyncio.sleep(0)  # the deadline is now due: the timer joins the turn the PubAck is counted in
        await super()._on_reply(msg)


async def test_a_batch_stored_while_the_loop_stalled_past_its_deadline_is_a_success(nc: NATS) -> None:
    publisher = _StallsBeforeTheLastPubAck(nc, stall_s=1.0)
    await publisher.start()
    outcome = await publisher.publish(messages("stalled", 40))  # was: "0 of 40 PubAcks still missing"
    assert (outcome.stored, await stored(nc), publisher.in_flight) == (40, 40, 0)
    await publisher.stop()
