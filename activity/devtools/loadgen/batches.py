"""Generated events cut into EventList bodies, the way kube-apiserver's batching audit backend sends them.

The traffic is a pure function of the plan: the same plan yields the same bodies byte for byte, whatever the
rate or the receiver does. Malformed items draw from a random stream of their own, so asking for them never
changes the valid events.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import orjson

from activity.devtools.loadgen.events import MALFORMED_KINDS, EventGenerator, GeneratorSettings, malformed

MAX_BATCH = 400  # kube-apiserver's --audit-webhook-batch-max-size default


@dataclass(frozen=True)
class TrafficPlan:
    events: int  # valid audit events; each request gives two (RequestReceived, ResponseComplete)
    start: datetime = GeneratorSettings.start
    step: timedelta = GeneratorSettings.step  # between consecutive requests
    seed: int = 1
    batch: int = MAX_BATCH  # items per EventList, malformed ones included
    malformed_ratio: float = 0.0  # expected share of malformed items among all items sent
    # The plan this one goes on from: its requests are generated again (not sent) so that objects keep their
    # state (a create after the earlier plan's create would be a 409), then this plan's clock takes over. The
    # events then come from the earlier plan's seed.
    after: TrafficPlan | None = None

    def __post_init__(self) -> None:
        if self.events < 0:
            raise ValueError("events must be >= 0")
        if self.batch < 1:
            raise ValueError("batch must be >= 1")
        if not 0.0 <= self.malformed_ratio < 1.0:
            raise ValueError("malformed ratio must be in [0, 1)")


def clocked_plan(
    events: int,
    *,
    now: datetime,
    rate: float = 0.0,
    start: datetime | None = None,
    seed: int = 1,
    batch: int = MAX_BATCH,
    malformed_ratio: float = 0.0,
) -> TrafficPlan:
    """A plan stamped for the wall clock: paced traffic (`rate` events/s) starts at `now` and keeps up with
    the clock, a request every 2/rate seconds; unpaced traffic ends at `now`. `start` overrides both."""
    step = timedelta(seconds=2 / rate) if rate else GeneratorSettings.step
    first = start or (now if rate else now - step * (events // 2))
    return TrafficPlan(events=events, start=first, step=step, seed=seed, batch=batch, malformed_ratio=malformed_ratio)


@dataclass(frozen=True)
class Batch:
    """One EventList POST body and what it holds."""

    body: bytes
    events: int  # valid items
    response_complete: int  # valid items at stage ResponseComplete (the ones the consumer stores)
    malformed: int

    @property
    def items(self) -> int:
        return self.events + self.malformed


def event_list(items: list[Any]) -> bytes:
    return orjson.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items})


def generator_for(plan: TrafficPlan) -> EventGenerator:
    """The generator whose next request is the plan's first."""
    if plan.after is None:
        return EventGenerator(GeneratorSettings(seed=plan.seed, start=plan.start, step=plan.step))
    generator = generator_for(plan.after)
    for _ in range(math.ceil(plan.after.events / 2)):
        generator.request()
    generator.continue_at(plan.start, plan.step)
    return generator


def items(plan: TrafficPlan) -> Iterator[tuple[Any, str | None]]:
    """Every item to send, in order, with its malformed kind (None for a valid event)."""
    generator = generator_for(plan)
    faults = random.Random(f"malformed-{plan.seed}")
    serial = 0
    for event in islice(generator.events(math.ceil(plan.events / 2)), plan.events):
        yield event, None
        # A geometric number of malformed items after each valid one: their expected share of all items is
        # exactly malformed_ratio.
        while plan.malformed_ratio and faults.random() < plan.malformed_ratio:
            kind = faults.choice(MALFORMED_KINDS)
            serial += 1
            yield malformed(event, kind, serial), kind


def batches(plan: TrafficPlan) -> Iterator[Batch]:
    pending: list[tuple[Any, str | None]] = []

    def cut() -> Batch:
        valid = [item for item, kind in pending if kind is None]
        return Batch(
            body=event_list([item for item, _ in pending]),
            events=len(valid),
            response_complete=sum(1 for e in valid if e["stage"] == "ResponseComplete"),
            malformed=len(pending) - len(valid),
        )

    for pair in items(plan):
        pending.append(pair)
        if len(pending) == plan.batch:
            yield cut()
            pending = []
    if pending:
        yield cut()
