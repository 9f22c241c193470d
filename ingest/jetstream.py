"""JetStream names and setup shared by the webhook receiver and the consumer.

The defaults here are the ones the NACK manifests in config/components/nats-stream declare; the tests compare
them. Dead letters go to a stream of their own so that the consumer of audit.k8s.> never sees them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

STREAM = "AUDIT_EVENTS"
SUBJECT_PREFIX = "audit.k8s"
DEAD_LETTER_STREAM = "AUDIT_DEAD_LETTERS"
DEAD_LETTER_PREFIX = "audit.deadletter"
DURABLE = "activity-clickhouse"

# Headers on every dead letter: why it was rejected, by whom, and where it was headed.
REASON_HEADER = "Activity-Reason"
SOURCE_HEADER = "Activity-Source"
ORIGINAL_SUBJECT_HEADER = "Activity-Original-Subject"
ORIGINAL_SIZE_HEADER = "Activity-Original-Size"
MSG_ID_HEADER = "Nats-Msg-Id"


def events_subject(cluster: str) -> str:
    return f"{SUBJECT_PREFIX}.{cluster}"


def dead_letter_subject(source: str, cluster: str) -> str:
    """e.g. audit.deadletter.webhook.prod-1 or audit.deadletter.consumer.prod-1."""
    return f"{DEAD_LETTER_PREFIX}.{source}.{cluster}"


@dataclass(frozen=True)
class StreamSettings:
    name: str = STREAM
    subjects: tuple[str, ...] = (f"{SUBJECT_PREFIX}.>",)
    duplicate_window_s: float = 120.0  # JetStream drops a re-sent Nats-Msg-Id inside this window
    max_age_s: float = 7 * 24 * 3600.0  # a week of backlog if ClickHouse is down
    max_bytes: int = -1  # -1: unlimited
    replicas: int = 1

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            storage=StorageType.FILE,
            retention=RetentionPolicy.LIMITS,
            discard=DiscardPolicy.OLD,
            duplicate_window=self.duplicate_window_s,
            max_age=self.max_age_s,
            max_bytes=self.max_bytes,
            num_replicas=self.replicas,
        )


DEAD_LETTER_SETTINGS = StreamSettings(
    name=DEAD_LETTER_STREAM,
    subjects=(f"{DEAD_LETTER_PREFIX}.>",),
    duplicate_window_s=120.0,
    max_age_s=30 * 24 * 3600.0,
)


async def ensure_stream(js: JetStreamContext, settings: StreamSettings) -> str:
    """Create the stream, or update it to `settings`; returns what was done (for the start-up log)."""
    wanted = settings.config()
    try:
        await js.stream_info(settings.name)
    except NotFoundError:
        await js.add_stream(wanted)
        return f"created stream {settings.name}"
    await js.update_stream(wanted)
    return f"updated stream {settings.name}"


async def connect(url: str, name: str) -> NATS:
    """A client that reconnects forever: a NATS restart must never end a receiver or consumer."""

    async def on_error(err: Exception) -> None:
        log.warning("nats: %s", err)

    async def on_disconnected() -> None:
        log.warning("nats: disconnected from %s", url)

    async def on_reconnected() -> None:
        log.info("nats: reconnected to %s", url)

    return await nats.connect(
        url,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
    )


DEAD_LETTER_SAMPLE_BYTES = 64 * 1024  # an oversize item is dead-lettered truncated to this, with its real size


def dead_letter(payload: bytes, *, reason: str, source: str, original_subject: str) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a dead letter: the payload (truncated if huge) and why it was rejected."""
    headers = {
        REASON_HEADER: reason[:512],
        SOURCE_HEADER: source,
        ORIGINAL_SUBJECT_HEADER: original_subject,
        ORIGINAL_SIZE_HEADER: str(len(payload)),
    }
    return payload[:DEAD_LETTER_SAMPLE_BYTES], headers
