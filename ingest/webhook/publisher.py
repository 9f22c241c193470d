"""Pipelined JetStream publishing: a core publish per message, every message of a batch with the batch's own reply
subject under ONE wildcard inbox subscription, whose callback counts each PubAck to its batch.

Unlike `js.publish_async`, no future, task or semaphore per message (docs/benchmarks.md, "Design measurements").
A batch is done when its last PubAck is back, and fails as soon as one PubAck is an error or a no-responders
status, or when its deadline passes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError

from ingest.webhook.messages import Outgoing

_STATUS_HEADER = "Status"
_NO_RESPONDERS = "503"


class JetStreamUnavailable(Exception):
    """JetStream did not durably store every message of a batch: the sender should retry the whole batch."""


@dataclass(frozen=True)
class PublishOutcome:
    stored: int  # PubAcked, duplicates included
    duplicates: int  # PubAcked as already stored inside the duplicate window


class _Batch:
    __slots__ = ("done", "duplicates", "in_flight", "remaining")

    def __init__(self, done: asyncio.Future[None], size: int) -> None:
        self.done = done
        self.remaining = size
        self.duplicates = 0
        self.in_flight = 0  # sent, PubAck not back yet

    def fail(self, why: str) -> None:
        if not self.done.done():
            self.done.set_exception(JetStreamUnavailable(why))


class PipelinedPublisher:
    def __init__(self, nc: NATS, *, batch_timeout_s: float, max_in_flight: int) -> None:
        self._nc = nc
        self._timeout = batch_timeout_s
        self._max_in_flight = max_in_flight
        self._in_flight = 0
        self._room = asyncio.Event()
        self._room.set()
        self._pending: dict[str, _Batch] = {}
        self._next_token = 0
        self._prefix = ""
        self._sub: Subscription | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def start(self) -> None:
        self._prefix = self._nc.new_inbox() + "."
        # No pending limits: PubAcks are tiny, and dropping one would fail a batch that was in fact stored.
        self._sub = await self._nc.subscribe(
            self._prefix + "*", cb=self._on_reply, pending_msgs_limit=0, pending_bytes_limit=0
        )

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(NatsError):  # the connection may be closed already: nothing to undo then
                await self._sub.unsubscribe()
            self._sub = None
        for batch in set(self._pending.values()):
            batch.fail("the publisher stopped")
        self._pending.clear()

    def _settle(self, count: int) -> None:
        self._in_flight -= count
        if self._in_flight < self._max_in_flight:
            self._room.set()

    async def _on_reply(self, msg: Msg) -> None:
        batch = self._pending.get(msg.subject[len(self._prefix) :])
        if batch is None:  # the batch already failed or timed out: nothing waits for this PubAck
            return
        batch.in_flight -= 1
        self._settle(1)
        data = msg.data
        # The common PubAck, `{"stream":"AUDIT_EVENTS","seq":42}`, is recognised from its bytes: stream names hold
        # no quotes, so `"error"` or `"duplicate"` can only be keys, and those replies are parsed.
        if data.startswith(b'{"stream"') and b'"error"' not in data and b'"duplicate"' not in data:
            self._count_stored(batch)
            return
        if msg.headers and msg.headers.get(_STATUS_HEADER) == _NO_RESPONDERS:
            batch.fail(f"no JetStream stream answered (no responders) on {msg.subject}")
            return
        try:
            ack = orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            batch.fail(f"JetStream answered with a non-JSON PubAck: {msg.data[:200]!r}")
            return
        error = ack.get("error") if isinstance(ack, dict) else "not a PubAck object"
        if error is not None:
            batch.fail(f"JetStream refused a message: {error}")
            return
        if ack.get("duplicate"):
            batch.duplicates += 1
        self._count_stored(batch)

    @staticmethod
    def _count_stored(batch: _Batch) -> None:
        batch.remaining -= 1
        if batch.remaining == 0 and not batch.done.done():
            batch.done.set_result(None)

    async def publish(self, messages: Sequence[Outgoing]) -> PublishOutcome:
        """Publish all, return once every one is PubAcked; JetStreamUnavailable otherwise (within the timeout)."""
        if not messages:
            return PublishOutcome(0, 0)
        if not self._nc.is_connected:
            raise JetStreamUnavailable("not connected to NATS")
        batch = _Batch(asyncio.get_running_loop().create_future(), len(messages))
        token = str(self._next_token)
        self._next_token += 1
        self._pending[token] = batch
        reply = self._prefix + token
        try:
            async with asyncio.timeout(self._timeout):
                for message in messages:
                    while self._in_flight >= self._max_in_flight:
                        self._room.clear()
                        await self._room.wait()
                    if batch.done.done():  # failed early: stop sending the rest
                        break
                    batch.in_flight += 1
                    self._in_flight += 1
                    await self._nc.publish(message.subject, message.data, reply, message.headers)
                await batch.done
        except TimeoutError:
            # The deadline and the last PubAck can land in the same turn of a stalled loop, the PubAck first: the
            # batch is then stored, and only the wake-up lost the race. Its outcome, not the timer, decides.
            if not batch.done.done() or batch.done.cancelled():
                raise JetStreamUnavailable(
                    f"{batch.remaining} of {len(messages)} PubAcks still missing after {self._timeout:g}s"
                ) from None
            batch.done.result()  # a refusal that came first is still a refusal
        except NatsError as err:
            raise JetStreamUnavailable(f"publishing to NATS failed: {type(err).__name__}: {err}") from None
        finally:
            self._forget(token, batch)
        return PublishOutcome(len(messages), batch.duplicates)

    def _forget(self, token: str, batch: _Batch) -> None:
        """Stop waiting for the batch (after a failure, its late PubAcks are then ignored) and free its room."""
        if batch.done.done() and not batch.done.cancelled():
            batch.done.exception()  # retrieved: a failure that lost the race with the timeout is not "never retrieved"
        self._pending.pop(token, None)
        if batch.in_flight:
            self._settle(batch.in_flight)
            batch.in_flight = 0
