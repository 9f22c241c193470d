"""One batch of pulled messages: every message is held (unacked) until the batch's insert succeeded."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from nats.aio.msg import Msg

from ingest.consumer.puller import delivery
from ingest.consumer.screening import Filtered, Row, Verdict


@dataclass(eq=False)
class Batch:
    held: list[tuple[Msg, Verdict]] = field(default_factory=list)
    nbytes: int = 0  # payload bytes held: what bounds memory
    started: float | None = None  # monotonic time of the first message
    byte_full: bool = False  # the server refused the next message for our byte budget
    # Counted here and added to the metrics once per batch: a metric update per message costs as much as
    # screening it.
    filtered: Counter[str] = field(default_factory=Counter)
    redelivered: int = 0
    pending: int | None = None  # messages behind the last one, from its reply subject

    def __len__(self) -> int:
        return len(self.held)

    def add(self, msg: Msg, verdict: Verdict) -> None:
        if self.started is None:
            self.started = time.monotonic()
        self.held.append((msg, verdict))
        self.nbytes += len(msg.data)
        if type(verdict) is Filtered:
            self.filtered[verdict.stage] += 1
        where = delivery(msg.reply) if msg.reply else None
        if where is not None:
            self.redelivered += where.delivered > 1
            self.pending = where.pending

    def age(self, now: float) -> float:
        return 0.0 if self.started is None else now - self.started

    def rows(self) -> list[tuple[Msg, Row]]:
        return [(m, v) for m, v in self.held if isinstance(v, Row)]

    def messages(self) -> list[Msg]:
        return [m for m, _ in self.held]
