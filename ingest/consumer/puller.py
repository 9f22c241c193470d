"""Raw JetStream pull: one `$JS.API.CONSUMER.MSG.NEXT` request at a time, messages arriving on a callback.

Cheaper than nats-py's `fetch()`, which spends a task, a wait_for and a uuid on every message (docs/benchmarks.md,
"Design measurements"). Each request has its own reply subject under one inbox subscription, so a status message
(408 expired, 409 refused, 404 nothing, 503 no responders) ends only the request it answers. Delivered messages
carry their stream subject instead; one delivered for an older request is still ours and goes to the batch.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import orjson
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import Header

log = logging.getLogger(__name__)

# A request whose answer never comes (the server died) is given up this long after it should have expired.
_GRACE_S = 2.0


class Ended(enum.Enum):
    COMPLETE = "complete"  # all requested messages arrived
    EXPIRED = "expired"  # 408: the request's time ran out
    NO_MESSAGES = "no-messages"  # 404
    BYTES = "bytes"  # 409 Message Size Exceeds MaxBytes: the next message does not fit the byte budget
    REFUSED = "refused"  # other 409s: consumer deleted, leadership change, max waiting, server shutdown
    UNAVAILABLE = "unavailable"  # 503: no responders, JetStream or the consumer is not there
    LOST = "lost"  # no answer at all within expires + grace
    CANCELLED = "cancelled"  # stop() was called


@dataclass(frozen=True)
class PullOutcome:
    ended: Ended
    delivered: int
    description: str = ""


class Delivery(NamedTuple):  # parsed for every message: a tuple is several times cheaper than a dataclass
    """From a JetStream message's reply subject: its stream sequence, how often it was delivered, and how many
    messages wait behind it."""

    stream_seq: int
    delivered: int
    pending: int


def delivery(reply: str) -> Delivery | None:
    """Parse `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the newer form with
    `<domain>.<account hash>` after `$JS.ACK` and a random token at the end; None if it is neither."""
    tokens = reply.split(".")
    if len(tokens) < 9 or tokens[0] != "$JS" or tokens[1] != "ACK":
        return None
    try:
        if len(tokens) == 9:
            return Delivery(int(tokens[5]), int(tokens[4]), int(tokens[8]))
        return Delivery(int(tokens[7]), int(tokens[6]), int(tokens[10]))
    except (ValueError, IndexError):
        return None


def _status(msg: Msg) -> tuple[str, str] | None:
    headers = msg.headers
    if not headers:
        return None
    status = headers.get(Header.STATUS.value)
    return None if status is None else (status, headers.get(Header.DESCRIPTION.value, ""))


class Puller:
    def __init__(self, nc: NATS, stream: str, consumer: str, on_message: Callable[[Msg], None]) -> None:
        self._nc = nc
        self._api = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._on_message = on_message
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._seq = 0
        self._current = ""
        self._wanted = 0
        self._delivered = 0
        self._done: asyncio.Future[PullOutcome] | None = None
        self.received = 0  # messages received since start, status messages aside

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(f"{self._inbox}.*", cb=self._receive)

    async def stop(self) -> None:
        self.cancel()
        if self._sub is not None:
            sub, self._sub = self._sub, None
            try:
                await sub.unsubscribe()
            except Exception as err:  # closed or reconnecting: the server forgets the subscription anyway
                log.debug("unsubscribe: %s", err)

    async def pull(self, batch: int, expires_s: float, max_bytes: int | None = None) -> PullOutcome:
        """Ask for up to `batch` messages (and `max_bytes`); wait until they came or the request ended."""
        self._seq += 1
        self._current = f"{self._inbox}.{self._seq}"
        self._wanted, self._delivered = batch, 0
        done = self._done = asyncio.get_running_loop().create_future()
        request: dict[str, int] = {"batch": batch, "expires": int(expires_s * 1e9)}
        if max_bytes is not None:
            request["max_bytes"] = max_bytes
        try:
            await self._nc.publish(self._api, orjson.dumps(request), reply=self._current)
            return await asyncio.wait_for(asyncio.shield(done), expires_s + _GRACE_S)
        except TimeoutError:
            return PullOutcome(Ended.LOST, self._delivered)
        except Exception as err:  # a publish while the connection is closed: same as an unanswered request
            log.warning("pull request failed: %s", err)
            return PullOutcome(Ended.LOST, self._delivered, str(err))
        finally:
            self._current = ""
            self._done = None

    def cancel(self) -> None:
        self._finish(PullOutcome(Ended.CANCELLED, self._delivered))

    def _finish(self, outcome: PullOutcome) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(outcome)

    async def _receive(self, msg: Msg) -> None:
        status = None if msg.data else _status(msg)  # status messages have no payload
        if status is None:
            self._on_message(msg)
            self.received += 1
            # A delivered message carries its stream subject, not the request's reply subject: it is counted
            # to the current request even when an earlier, abandoned one delivered it, so a pull may end early.
            self._delivered += 1
            if self._delivered >= self._wanted:
                self._finish(PullOutcome(Ended.COMPLETE, self._delivered))
            return
        if msg.subject != self._current:
            return  # the answer to a request we already gave up on
        code, description = status
        if code == "100":
            return  # idle heartbeat
        if code == "409" and "Batch Completed" in description:
            ended = Ended.COMPLETE
        elif code == "408":
            ended = Ended.EXPIRED
        elif code == "404":
            ended = Ended.NO_MESSAGES
        elif code == "409" and "MaxBytes" in description:
            ended = Ended.BYTES
        elif code == "503":
            ended = Ended.UNAVAILABLE
        else:
            ended = Ended.REFUSED
        self._finish(PullOutcome(ended, self._delivered, f"{code} {description}".strip()))
