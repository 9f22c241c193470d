"""What the consumer is told at start: the durable to pull from and how to batch. Frozen, checked once."""

from __future__ import annotations

from dataclasses import dataclass

from auditlog.events import MAX_EVENT_BYTES
from auditlog.fields import STAGES
from ingest.consumer.partitions import MAX_PARTITIONS_PER_INSERT
from ingest.jetstream import DURABLE, STREAM, SUBJECT_PREFIX

# Sized by measurement on 2 cores: chdb inserts are efficient from a few thousand events per insert, and
# kube-apiserver sends two stages per request, so 10000 messages make inserts of ~5000 ResponseComplete events.
# 10000 mean-size (1.4-1.7 KB) events are ~16 MB: 32 MiB only binds when large RequestResponse events dominate.
DEFAULT_BATCH_EVENTS = 10_000
DEFAULT_BATCH_BYTES = 32 * 1024 * 1024
DEFAULT_BATCH_AGE_S = 1.0
DEFAULT_MAX_EVENT_BYTES = MAX_EVENT_BYTES  # the webhook refuses bigger events by the same rule
# Each replica holds at most two batches unacked (one inserting, one filling): room for two replicas.
ACK_PENDING_PER_BATCH = 4
DEFAULT_MAX_ACK_PENDING = ACK_PENDING_PER_BATCH * DEFAULT_BATCH_EVENTS


class SettingsError(ValueError):
    """A consumer setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class ConsumerSettings:
    stream: str = STREAM
    durable: str = DURABLE
    filter_subject: str = f"{SUBJECT_PREFIX}.>"
    stages: frozenset[str] = frozenset({"ResponseComplete"})
    batch_events: int = DEFAULT_BATCH_EVENTS
    batch_bytes: int = DEFAULT_BATCH_BYTES
    batch_age_s: float = DEFAULT_BATCH_AGE_S
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_ack_pending: int = DEFAULT_MAX_ACK_PENDING
    ack_wait_s: float = 30.0  # unacked this long → redelivered; batches held longer get +WPI in-progress acks
    backoff_initial_s: float = 0.2
    backoff_max_s: float = 10.0
    info_interval_s: float = 5.0  # consumer info poll for the pending / ack-pending gauges
    shutdown_grace_s: float = 20.0  # on stop, how long to keep retrying a failing insert before giving up
    # A batch held this long without any insert, dead letter or ack makes readiness false: the consumer is stuck
    # (the store keeps refusing, or an error we do not know). Far above a slow insert of a full batch.
    stall_after_s: float = 60.0
    # Days (partitions) one insert may span: ClickHouse's own default limit, which the store is assumed to keep.
    # A store set lower still works (inserts refused as too wide are split by day), only slower.
    max_partitions_per_insert: int = MAX_PARTITIONS_PER_INSERT

    def __post_init__(self) -> None:
        unknown = self.stages - set(STAGES)
        if not self.stages or unknown:
            raise SettingsError(f"stages must be a non-empty subset of {', '.join(STAGES)}; got {sorted(unknown)}")
        for name in ("batch_events", "batch_bytes", "max_event_bytes", "max_ack_pending", "max_partitions_per_insert"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1")
        for name in ("batch_age_s", "ack_wait_s", "backoff_initial_s", "info_interval_s", "stall_after_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive")
        if self.max_ack_pending < self.batch_events:
            # The server stops delivering at max_ack_pending: a batch could never fill and would wait for its age.
            raise SettingsError(
                f"max_ack_pending ({self.max_ack_pending}) must be at least batch_events ({self.batch_events})"
            )
        if self.max_event_bytes > self.batch_bytes:
            raise SettingsError(
                f"max_event_bytes ({self.max_event_bytes}) must not exceed batch_bytes ({self.batch_bytes})"
            )
        if self.backoff_max_s < self.backoff_initial_s:
            raise SettingsError("backoff_max_s must be at least backoff_initial_s")

    @property
    def in_progress_after_s(self) -> float:
        """Held this long, a message gets a +WPI so the server does not hand it to another replica."""
        return self.ack_wait_s / 3
