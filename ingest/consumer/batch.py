"""One batch of pulled messages: every message is held (unacked) until the batch's insert succeeded.

Messages are only collected as they arrive; they are screened all at once when the batch is flushed. Per message
work on the event loop competes with nats-py's own parsing for the one core Python has, and one tight loop per
batch costs less than a call chain per message.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from nats.aio.msg import Msg

from ingest.consumer.puller import delivery
from ingest.consumer.screening import Filtered, Poison, Row, screen
from ingest.jetstream import MSG_ID_HEADER


@dataclass(frozen=True)
class Screened:
    """What a batch's messages turned out to be; the metrics' counts come with it."""

    rows: list[tuple[Msg, Row]]
    poison: list[tuple[Msg, Poison]]
    filtered: Counter[str]
    redelivered: int
    pending: int | None  # messages behind the last one, from its reply subject


@dataclass(eq=False)
class Batch:
    held: list[Msg] = field(default_factory=list)
    nbytes: int = 0  # payload bytes held: what bounds memory
    started: float | None = None  # monotonic time of the first message
    byte_full: bool = False  # the server refused the next message for our byte budget

    def __len__(self) -> int:
        return len(self.held)

    def add(self, msg: Msg) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.held.append(msg)
        self.nbytes += len(msg.data)

    def age(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started

    def screen(self, stages: frozenset[str], max_event_bytes: int) -> Screened:
        rows: list[tuple[Msg, Row]] = []
        poison: list[tuple[Msg, Poison]] = []
        filtered: Counter[str] = Counter()
        redelivered = 0
        pending: int | None = None
        for msg in self.held:
            headers = msg.headers
            verdict = screen(msg.data, stages, max_event_bytes, headers.get(MSG_ID_HEADER) if headers else None)
            if isinstance(verdict, Row):
                rows.append((msg, verdict))
            elif isinstance(verdict, Filtered):
                filtered[verdict.stage] += 1
            else:
                poison.append((msg, verdict))
            where = delivery(msg.reply) if msg.reply else None
            if where is not None:
                redelivered += where.delivered > 1
                pending = where.pending
        return Screened(rows, poison, filtered, redelivered, pending)
