"""JetStream going away and coming back: 503 while it is down (so kube-apiserver retries), nothing lost after."""

from __future__ import annotations

import asyncio
import os
import signal

import orjson
from polling import eventually
from webhook_support import Running, event_list, has_status, msg_ids, running_webhook, status_of, stored

from activity.devtools.loadgen.events import EventGenerator
from activity.devtools.natsd import NatsServer
from ingest.jetstream import STREAM


async def _send_like_kube_apiserver(webhook: Running, body: bytes, answers: list[int]) -> None:
    """Retry the batch until it is accepted, as kube-apiserver's webhook backend does."""
    while True:
        status, _ = await webhook.post(body)
        answers.append(status)
        if status == 200:
            return
        await asyncio.sleep(0.1)


async def test_nats_killed_mid_stream_gives_503_then_every_retried_batch_is_stored_once(
    nats_server: NatsServer,
) -> None:
    generator = EventGenerator()
    batches = [list(generator.events(100)) for _ in range(30)]
    async with running_webhook(nats_server, publish_timeout_s=1.0) as webhook:
        assert await status_of(webhook, "/readyz") == 200
        answers: list[int] = []

        async def sender() -> None:
            for batch in batches:
                await _send_like_kube_apiserver(webhook, event_list(batch), answers)

        sending = asyncio.create_task(sender())
        await eventually(lambda: len(answers) >= 5, "some batches stored before the crash")
        nats_server.kill()
        await eventually(lambda: has_status(webhook, "/readyz", 503), "/readyz to say NATS is gone")
        refused_while_down = len(answers)
        await eventually(lambda: answers.count(503) >= 3, "the sender to be told to retry")
        assert not sending.done()
        nats_server.start()  # same directory and port: the stored messages come back
        await eventually(lambda: has_status(webhook, "/readyz", 200), "/readyz to say NATS is back")
        await asyncio.wait_for(sending, 60)

        assert answers[refused_while_down:].count(503) >= 3 and set(answers) == {200, 503}
        messages = await stored(webhook.nc, STREAM)
        everything = [event for batch in batches for event in batch]
        sent, expected = msg_ids(messages)
        assert sent == expected and len(set(sent)) == len(everything)
        assert sorted(m.data for m in messages) == sorted(orjson.dumps(e) for e in everything)


async def test_stop_finishes_the_batch_in_flight_before_returning(nats_server: NatsServer) -> None:
    """SIGSTOP freezes nats-server with PubAcks owed; stop() must wait for them rather than cut the request."""
    items = list(EventGenerator().events(200))
    async with running_webhook(nats_server, publish_timeout_s=10.0) as webhook:
        assert nats_server.process is not None
        os.kill(nats_server.process.pid, signal.SIGSTOP)
        try:
            posting = asyncio.create_task(webhook.post(event_list(items)))
            await eventually(lambda: webhook.handle.publisher.in_flight > 0, "the batch to be published")
            stopping = asyncio.create_task(webhook.handle.stop())
            await asyncio.sleep(0.3)
            assert not posting.done() and not stopping.done()
        finally:
            os.kill(nats_server.process.pid, signal.SIGCONT)
        assert await posting == (200, {"accepted": 400, "deadLettered": 0, "duplicates": 0})
        await stopping
        assert len(await stored(webhook.nc, STREAM)) == 400
