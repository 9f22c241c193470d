"""The receiver's Prometheus metrics, on the default registry so that one process hosting the webhook and the
consumer (`activity up`) serves both; every name starts with `activity_webhook_`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ingest.deadletter import DUPLICATE_KEY, NOT_AUDIT_EVENT, OVERSIZE, UNENCODABLE
from ingest.redaction.rules import BUILT_IN

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("activity_webhook_requests_total", "EventList requests answered, by HTTP status code", ["code"])
REJECTED = Counter(
    "activity_webhook_rejected_requests_total",
    "Requests refused whole (4xx, or 503 when JetStream is unavailable), by reason",
    ["reason"],
)
RECEIVED = Counter("activity_webhook_events_received_total", "Items received in accepted EventLists")
PUBLISHED = Counter("activity_webhook_events_published_total", "Events PubAcked by JetStream (duplicates included)")
DUPLICATES = Counter(
    "activity_webhook_events_duplicate_total", "Events JetStream already held (a retried batch), dropped by dedupe"
)
DEAD_LETTERED = Counter(
    "activity_webhook_events_dead_lettered_total", "Items PubAcked onto the dead-letter stream, by reason", ["reason"]
)
# Every reason the webhook gives, exported at 0 from the start: a series born at 1 has no increase() in Prometheus,
# and the first dead letter would never raise the dead-letter alert.
for _reason in (OVERSIZE, NOT_AUDIT_EVENT, UNENCODABLE, DUPLICATE_KEY):
    DEAD_LETTERED.labels(_reason)
REDACTED = Counter(
    "activity_webhook_events_redacted_total",
    "Events published with credentials replaced by markers, by the resource whose rule replaced them",
    ["resource"],
)
for _rule in BUILT_IN:  # exported at 0 from the start, so that rate() sees the first one
    REDACTED.labels(_rule.label)
REQUEST_SECONDS = Histogram(
    "activity_webhook_request_duration_seconds", "Time to answer an EventList POST", buckets=_LATENCY_BUCKETS
)
PUBLISH_SECONDS = Histogram(
    "activity_webhook_publish_duration_seconds",
    "Time from a batch's first publish to its last PubAck",
    buckets=_LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("activity_webhook_publish_in_flight", "Messages published and waiting for their PubAck")
NATS_CONNECTED = Gauge("activity_webhook_nats_connected", "1 while the receiver's NATS connection is up")
RECEIVE_TO_ACK_SECONDS = Histogram(
    "activity_webhook_receive_to_ack_seconds",
    "Time from an EventList's arrival to the PubAck of its last message (durable in JetStream), accepted ones only",
    buckets=_LATENCY_BUCKETS,
)


def observe_answered(status: int, seconds: float) -> None:
    """An EventList answered after `seconds`: only a 200 means every message of it was PubAcked."""
    if status == 200:
        RECEIVE_TO_ACK_SECONDS.observe(seconds)
