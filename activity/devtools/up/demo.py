"""`--with-demo-traffic`: loadgen traffic into the local webhook so a newcomer sees results at once.

A burst first, spread over the last two hours of wall-clock time (so `now-24h` finds it and histories have
several versions), then a gentle trickle stamped as it is sent. The seeds come from a run counter kept in the
data directory: the first run on a fresh directory always sends the same traffic (so the README's example
object exists), and each later run sends new auditIDs rather than ones the store would deduplicate.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from activity.devtools.loadgen import Delivery, TrafficPlan, clocked_plan, send
from activity.devtools.loadgen.batches import generator_for

log = logging.getLogger(__name__)

BURST_EVENTS = 4000  # 2000 requests; the consumer stores their 2000 ResponseComplete events
BURST_SPAN = timedelta(hours=2)
TRICKLE_RATE = 2.0  # events per second: one request a second
TRICKLE_EVENTS = 10**9  # "until stopped"; the generator is lazy


@dataclass(frozen=True)
class DemoObject:
    """An object the burst changes several times: the `history --diff` to suggest."""

    resource: str
    namespace: str
    name: str
    versions: int


@dataclass(frozen=True)
class DemoTraffic:
    burst: TrafficPlan
    trickle: TrafficPlan

    @classmethod
    def starting(cls, now: datetime, run: int) -> DemoTraffic:
        """The traffic of the `run`-th demo on a data directory (1 for the first)."""
        seed = 2 * run
        step = BURST_SPAN / (BURST_EVENTS // 2)
        burst = TrafficPlan(events=BURST_EVENTS, start=now - BURST_SPAN, step=step, seed=seed)
        # The trickle goes on from the burst's cluster: its objects keep their state (no second create).
        trickle = replace(clocked_plan(TRICKLE_EVENTS, now=now, rate=TRICKLE_RATE, seed=seed + 1), after=burst)
        return cls(burst, trickle)

    @staticmethod
    def next_run(counter: Path) -> int:
        """Count this run in `counter` (a file holding the number of runs so far) and return its number."""
        try:
            done = int(counter.read_text().strip())
        except (OSError, ValueError):
            done = 0
        counter.write_text(f"{done + 1}\n")
        return done + 1

    @property
    def stored_by_burst(self) -> int:
        return self.burst.events // 2

    def busiest_object(self) -> DemoObject:
        """The namespaced object the burst changes most often (each create, update or patch is a new version)."""
        writes: Counter[tuple[str, str, str]] = Counter()
        for event in generator_for(self.burst).events(self.burst.events // 2):
            ref = event.get("objectRef", {})
            stored = event["stage"] == "ResponseComplete" and event["verb"] in ("create", "update", "patch")
            if stored and "responseObject" in event and ref.get("namespace"):
                writes[(ref["resource"], ref["namespace"], ref["name"])] += 1
        (resource, namespace, name), versions = max(writes.items(), key=lambda item: (item[1], item[0]))
        return DemoObject(resource, namespace, name, versions)

    async def run(self, webhook_url: str) -> None:
        """The burst, then the trickle until cancelled."""
        delivery = Delivery(url=webhook_url)
        summary = await send(self.burst, delivery)
        log.info("demo burst: %d events sent, %d failed batches", summary.events, summary.failed_batches)
        await send(self.trickle, Delivery(url=webhook_url, rate=TRICKLE_RATE))
