"""Realistic kube-apiserver audit webhook traffic, one module per step: events (the deterministic generator) →
batches (EventList bodies) → sender (paced POSTs with kube-apiserver's retries); `command` is the CLI.

In-process, e.g. for demo traffic: `await send(clocked_plan(n, now=datetime.now(UTC), rate=r), Delivery(url))`.
"""

from activity.devtools.loadgen.batches import TrafficPlan, clocked_plan
from activity.devtools.loadgen.sender import Delivery, LoadSummary, Progress, send

__all__ = ["Delivery", "LoadSummary", "Progress", "TrafficPlan", "clocked_plan", "send"]
