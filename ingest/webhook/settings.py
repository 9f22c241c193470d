"""What the webhook receiver is told at start: where to listen, where to publish, and its limits."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from auditlog.listener import ListenerLimits
from ingest.jetstream import StreamSettings, dead_letter_subject, events_subject
from ingest.redaction.settings import RedactionSettings

SOURCE = "webhook"  # the dead-letter source name: audit.deadletter.webhook.<cluster>
# One subject token: no dots, spaces or wildcards, so `audit.k8s.<cluster>` stays inside `audit.k8s.>`.
_CLUSTER_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True)
class WebhookSettings:
    host: str = "127.0.0.1"
    port: int = 8090  # 0 picks a free port (tests); the handle reports the bound one
    cluster: str = "default"
    stream: StreamSettings = field(default_factory=StreamSettings)
    manage_streams: bool = True  # False where NACK (or an operator) owns the streams
    # kube-apiserver batches up to 400 events; RequestResponse events carrying big objects make ~10 MB batches.
    max_body_bytes: int = 64 * 1024 * 1024
    # kube-apiserver sends at most 400 per batch by default; the cap bounds the memory a body of tiny items takes
    # and keeps one batch's publish well inside its timeout.
    max_items: int = 20_000
    publish_timeout_s: float = 10.0  # kube-apiserver's own webhook timeout is 30 s: answer 503 well before it
    max_in_flight: int = 4096  # PubAcks outstanding across all requests (measured fast, bounded memory)
    listener: ListenerLimits = field(default_factory=ListenerLimits)  # connection cap, header/body timeouts
    redaction: RedactionSettings = field(default_factory=RedactionSettings)

    def __post_init__(self) -> None:
        if not _CLUSTER_TOKEN.fullmatch(self.cluster):
            raise ValueError(f"cluster {self.cluster!r} must be one NATS subject token: letters, digits, '-', '_'")
        if min(self.max_body_bytes, self.max_items, self.max_in_flight, self.publish_timeout_s) <= 0:
            raise ValueError("max body bytes, max items, max in flight and publish timeout must be positive")

    @property
    def subject(self) -> str:
        return events_subject(self.cluster)

    @property
    def dead_letter_subject(self) -> str:
        return dead_letter_subject(SOURCE, self.cluster)
