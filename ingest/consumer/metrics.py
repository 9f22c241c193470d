"""The consumer's Prometheus metrics, all named activity_consumer_*, in a registry of their own so that a
process hosting the webhook and the API server beside it can expose them together without clashes."""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.consumer.freshness import AGE_BUCKETS, AgeHistogram, ages
from ingest.deadletter import REASONS

_P = "activity_consumer_"


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.pulled = Counter(_P + "messages_pulled", "Messages received from JetStream", registry=r)
        self.inserted = Counter(_P + "events_inserted", "Events inserted into the store", registry=r)
        self.acked = Counter(_P + "messages_acked", "Messages acknowledged to JetStream", registry=r)
        self.dead_lettered = Counter(
            _P + "messages_dead_lettered", "Messages sent to the dead-letter stream", ["reason"], registry=r
        )
        for reason in REASONS:
            self.dead_lettered.labels(reason)
        self.filtered = Counter(
            _P + "messages_filtered", "Valid events of a stage not stored (acked)", ["stage"], registry=r
        )
        self.redelivered = Counter(
            _P + "messages_redelivered", "Messages received that JetStream had delivered before", registry=r
        )
        self.nacked = Counter(_P + "messages_nacked", "Messages handed back unstored on shutdown", registry=r)
        self.pulls = Counter(_P + "pull_requests", "Pull requests by how they ended", ["ended"], registry=r)
        self.batch_events = Histogram(
            _P + "batch_events",
            "Messages per flushed batch",
            buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000),
            registry=r,
        )
        self.batch_bytes = Histogram(
            _P + "batch_bytes",
            "Payload bytes per flushed batch",
            buckets=tuple(2.0**n for n in range(10, 27, 2)),
            registry=r,
        )
        self.batch_age = Histogram(
            _P + "batch_age_seconds",
            "Time from a batch's first message to its hand-off for insert",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
            registry=r,
        )
        self.insert_latency = Histogram(
            _P + "insert_duration_seconds",
            "Duration of one successful insert",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.store_errors = Counter(
            _P + "store_errors",
            "Failed inserts: transient (retried), data (rows isolated) or too_wide (split by day)",
            ["kind"],
            registry=r,
        )
        self.store_errors.labels("transient")
        self.store_errors.labels("data")
        self.store_errors.labels("too_wide")
        self.backoff_seconds = Counter(
            _P + "backoff_seconds", "Time spent waiting before retrying the store or NATS", registry=r
        )
        self.backing_off = Gauge(_P + "backing_off", "1 while a batch waits to be retried", registry=r)
        self.pending = Gauge(
            _P + "pending_messages", "Messages in the stream not yet delivered to the durable", registry=r
        )
        self.ack_pending = Gauge(
            _P + "ack_pending_messages", "Messages delivered to the durable and not acked yet", registry=r
        )
        self.waiting = Gauge(_P + "waiting_pulls", "Pull requests waiting on the durable (all replicas)", registry=r)
        self.stored_age = AgeHistogram(
            _P + "stored_event_age_seconds",
            "Age of an event when its insert returned: stageTimestamp to committed in the store (freshness SLI)",
            AGE_BUCKETS,
            registry=r,
        )

    def observe_stored(self, payloads: Iterable[bytes]) -> None:
        """The freshness of events whose insert has just returned."""
        self.stored_age.observe_all(ages(payloads, time.time()))
