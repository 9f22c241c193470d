"""Audit pipeline dashboard: kube-apiserver → webhook → JetStream → consumer → ClickHouse, is it flowing?"""

from __future__ import annotations

from activity.devtools.dashboards.model import (
    CLICKHOUSE,
    PROMETHEUS,
    Column,
    ColumnKind,
    Dashboard,
    DatasourceVariable,
    Panel,
    PanelType,
    PromTarget,
    Row,
    SqlFormat,
    SqlTarget,
)
from activity.devtools.dashboards.promql import quantiles, rate
from ingest.jetstream import DEAD_LETTER_STREAM, DURABLE, STREAM

PROM = DatasourceVariable("datasource", PROMETHEUS, "Prometheus", "Prometheus scraping the Activity services")
STORE = DatasourceVariable("clickhouse", CLICKHOUSE, "Audit store", "ClickHouse holding the events table")

# prometheus-nats-exporter (run with -jsz=all beside nats-server) names these; they are not ours, so the tests
# cannot scrape them from the Activity services. Names as its collector/jsz.go builds them.
NATS_EXPORTER_METRICS = frozenset(
    {
        "jetstream_stream_total_messages",
        "jetstream_stream_total_bytes",
        "jetstream_consumer_num_pending",
        "jetstream_consumer_num_ack_pending",
        "jetstream_consumer_num_redelivered",
    }
)
EXPORTER_NOTE = "Needs prometheus-nats-exporter with -jsz=all scraped beside nats-server."

_W = "activity_webhook_"
_C = "activity_consumer_"
_STREAMS = f'stream_name=~"{STREAM}|{DEAD_LETTER_STREAM}"'
# The freshness SLO (config/components/observability/prometheusrules.yaml): events stored within 10 s of their stage.
FRESHNESS_SLO_SECONDS = 10.0
FRESHNESS_OBJECTIVE = 0.99
_FRESH_LE = f'{{le="{FRESHNESS_SLO_SECONDS!r}"}}'


def _prom(
    title: str, description: str, *targets: PromTarget, unit: str = "short", width: int = 12, stacked: bool = False
) -> Panel:
    return Panel(title, description, PanelType.TIMESERIES, PROM, targets, unit=unit, width=width, stacked=stacked)


WEBHOOK: tuple[Panel | Row, ...] = (
    Row("Webhook: kube-apiserver → JetStream"),
    _prom(
        "Events received, published, duplicate, redacted",
        "Items per second in accepted EventLists (received) and PubAcked by JetStream (published). Published "
        "should follow received; a gap that stays open means items are being dead-lettered or batches refused. "
        "Duplicates are batches kube-apiserver resent after a timeout: a steady rate means the webhook answers "
        "too slowly for its --audit-webhook timeouts. Redacted: events whose credentials (Secret data, tokens) "
        "were replaced by markers before publishing, by resource; many of them means the audit policy logs "
        "Secrets at Request level or above.",
        PromTarget(f"sum({rate(_W + 'events_received_total')})", "received"),
        PromTarget(f"sum({rate(_W + 'events_published_total')})", "published"),
        PromTarget(f"sum({rate(_W + 'events_duplicate_total')})", "duplicate"),
        PromTarget(f"sum by (resource) ({rate(_W + 'events_redacted_total')})", "redacted: {{resource}}"),
        unit="ops",
    ),
    _prom(
        "EventList requests by status code",
        "Requests answered per second by HTTP code. Everything should be 200. 4xx means kube-apiserver (or "
        "something else) sends bodies the webhook refuses; 503 means JetStream was unavailable and "
        "kube-apiserver has to retry or drop the batch (see its audit webhook backoff).",
        PromTarget(f"sum by (code) ({rate(_W + 'requests_total')})", "{{code}}"),
        unit="reqps",
        stacked=True,
    ),
    _prom(
        "Rejected requests by reason",
        "Whole requests refused, by reason. Should be zero. jetstream_unavailable: NATS is down or the stream "
        "is full, audit events are at risk; a decoding reason: a client sends malformed EventLists.",
        PromTarget(f"sum by (reason) ({rate(_W + 'rejected_requests_total')})", "{{reason}}"),
        unit="reqps",
        width=8,
    ),
    _prom(
        "Items dead-lettered by the webhook",
        "Single items that can never be stored (oversize, not an audit event) moved to the dead-letter stream "
        "instead of failing their batch. Should be zero; any rate means a producer sends bad items: read them "
        f"from the {DEAD_LETTER_STREAM} stream.",
        PromTarget(f"sum by (reason) ({rate(_W + 'events_dead_lettered_total')})", "{{reason}}"),
        unit="ops",
        width=8,
    ),
    Panel(
        "NATS connected / publishes in flight",
        "1 while the webhook's NATS connection is up (0 is bad: every request gets 503). In flight: messages "
        "published and still waiting for their PubAck; a value that keeps growing means JetStream is slow to "
        "persist.",
        PanelType.STAT,
        PROM,
        (
            PromTarget(f"min({_W}nats_connected)", "connected"),
            PromTarget(f"sum({_W}publish_in_flight)", "in flight"),
        ),
        width=8,
    ),
    _prom(
        "Publish latency",
        "Time from a batch's first publish to its last PubAck, p50 and p99. A few milliseconds is normal; p99 "
        "near the webhook's request timeout means kube-apiserver will start resending batches (duplicates).",
        *quantiles(_W + "publish_duration_seconds"),
        unit="s",
    ),
    _prom(
        "EventList request latency",
        "Time to answer an EventList POST, p50 and p99. kube-apiserver's batch webhook waits for this; above a "
        "few seconds its buffer fills and it starts dropping audit events.",
        *quantiles(_W + "request_duration_seconds"),
        unit="s",
    ),
)

JETSTREAM: tuple[Panel | Row, ...] = (
    Row("JetStream"),
    _prom(
        "Stream messages",
        f"Messages held in the events stream and the dead-letter stream. {EXPORTER_NOTE} The events stream "
        "is a buffer: it rises during a store outage and falls back as the consumer catches up; approaching "
        "the stream's max messages/bytes means the buffer is about to discard. Dead letters should stay flat.",
        PromTarget(f"sum by (stream_name) (jetstream_stream_total_messages{{{_STREAMS}}})", "{{stream_name}}"),
        unit="short",
        width=8,
    ),
    _prom(
        "Stream bytes",
        f"Bytes stored per stream. {EXPORTER_NOTE} Compare with the stream's max_bytes: near it, JetStream "
        "discards (events stream) or refuses new messages.",
        PromTarget(f"sum by (stream_name) (jetstream_stream_total_bytes{{{_STREAMS}}})", "{{stream_name}}"),
        unit="bytes",
        width=8,
    ),
    _prom(
        "Durable: pending and unacked (consumer's view)",
        f"The consumer's own reading of its durable {DURABLE}: messages not yet delivered (pending), delivered "
        "but not acked (ack pending), and waiting pull requests. Pending near zero is healthy; pending that "
        "keeps growing means the consumer cannot keep up or is backing off from the store.",
        PromTarget(f"max({_C}pending_messages)", "pending"),
        PromTarget(f"max({_C}ack_pending_messages)", "ack pending"),
        PromTarget(f"max({_C}waiting_pulls)", "waiting pulls"),
        width=8,
    ),
    _prom(
        "Durable: pending and unacked (server's view)",
        f"The same durable as nats-server reports it. {EXPORTER_NOTE} Should agree with the consumer's view; "
        "redelivered counts messages delivered more than once (an insert failed or a consumer died before "
        "acking). A steady rise of redeliveries means batches keep failing.",
        PromTarget(f'max(jetstream_consumer_num_pending{{consumer_name="{DURABLE}"}})', "pending"),
        PromTarget(f'max(jetstream_consumer_num_ack_pending{{consumer_name="{DURABLE}"}})', "ack pending"),
        PromTarget(f'max(jetstream_consumer_num_redelivered{{consumer_name="{DURABLE}"}})', "redelivered"),
    ),
    _prom(
        "Redeliveries seen by the consumer",
        "Messages per second the consumer received that JetStream had delivered before, and messages handed "
        "back unstored on shutdown (nacked). Both near zero normally; redeliveries during a store outage are "
        "expected, outside one they mean acks are lost or the ack wait is too short for insert latency.",
        PromTarget(f"sum({rate(_C + 'messages_redelivered_total')})", "redelivered"),
        PromTarget(f"sum({rate(_C + 'messages_nacked_total')})", "nacked"),
        unit="ops",
    ),
)

CONSUMER: tuple[Panel | Row, ...] = (
    Row("Consumer: JetStream → ClickHouse"),
    _prom(
        "Pulled, inserted, acked",
        "Messages per second pulled from JetStream, events inserted into ClickHouse, messages acked. Acked "
        "should equal pulled; inserted is lower by the stages filtered out (below). Pulled above acked for "
        "minutes means inserts are failing and batches are retried.",
        PromTarget(f"sum({rate(_C + 'messages_pulled_total')})", "pulled"),
        PromTarget(f"sum({rate(_C + 'events_inserted_total')})", "inserted"),
        PromTarget(f"sum({rate(_C + 'messages_acked_total')})", "acked"),
        unit="ops",
    ),
    _prom(
        "Filtered by stage",
        "Valid events of a stage the consumer does not store (acked without insert), by stage. With the "
        "default --stages, RequestReceived is about half the traffic; a stage you expected to keep showing "
        "here means --stages is misconfigured.",
        PromTarget(f"sum by (stage) ({rate(_C + 'messages_filtered_total')})", "{{stage}}"),
        unit="ops",
        stacked=True,
    ),
    _prom(
        "Batch size",
        "Messages per flushed batch: mean and p99. Small batches under load waste ClickHouse parts (each insert "
        "is a part to merge); a p99 at the configured maximum means the consumer runs full and may fall behind.",
        PromTarget(
            f"sum({rate(_C + 'batch_events_sum')}) / sum({rate(_C + 'batch_events_count')})",
            "mean",
        ),
        PromTarget(
            f"histogram_quantile(0.99, sum by (le) ({rate(_C + 'batch_events_bucket')}))",
            "p99",
        ),
        width=8,
    ),
    _prom(
        "Batch age at flush",
        "Time from a batch's first message to its hand-off for insert, p50 and p99. Bounded by the consumer's "
        "max batch age; it adds directly to end-to-end freshness.",
        *quantiles(_C + "batch_age_seconds"),
        unit="s",
        width=8,
    ),
    _prom(
        "Insert latency",
        "Duration of one successful insert, p50 and p99. Rising latency at the same batch size means ClickHouse "
        "is struggling (merges, disk); beyond the ack wait, JetStream redelivers what is still being inserted.",
        *quantiles(_C + "insert_duration_seconds"),
        unit="s",
        width=8,
    ),
    _prom(
        "Errors",
        "Failed inserts by kind (transient: retried with backoff; data: the batch is split to isolate bad rows), "
        "messages dead-lettered by reason, and whether a batch is waiting to be retried. All should be zero; "
        "backing off for long means the store is down and JetStream is buffering.",
        PromTarget(f"sum by (kind) ({rate(_C + 'store_errors_total')})", "store error: {{kind}}"),
        PromTarget(f"sum by (reason) ({rate(_C + 'messages_dead_lettered_total')})", "dead-lettered: {{reason}}"),
        PromTarget(f"max({_C}backing_off)", "backing off"),
    ),
    _prom(
        "Pull requests by how they ended",
        "Pull requests per second by how they ended: complete (got all it asked for), expired or no-messages "
        "(an idle stream: fine), bytes (the byte budget was reached). refused, unavailable or lost mean JetStream "
        "or the durable is not answering: expect the backlog to grow.",
        PromTarget(f"sum by (ended) ({rate(_C + 'pull_requests_total')})", "{{ended}}"),
        unit="reqps",
        stacked=True,
    ),
)

_DELAY_MS = "dateDiff('millisecond', timestamp, inserted_at)"
END_TO_END: tuple[Panel | Row, ...] = (
    Row("End to end"),
    Panel(
        "Freshness: request to stored",
        "Delay from the moment kube-apiserver recorded a request stage to its row being inserted, p50 and p99, "
        "from the store itself (inserted_at - timestamp). Seconds is normal (webhook batching plus consumer "
        "batching); minutes means a backlog somewhere: check stream messages and consumer pending above.",
        PanelType.TIMESERIES,
        STORE,
        (
            SqlTarget(
                "SELECT $__timeInterval(timestamp) AS time,\n"
                f"  quantile(0.5)({_DELAY_MS}) / 1000 AS p50,\n"
                f"  quantile(0.99)({_DELAY_MS}) / 1000 AS p99\n"
                "FROM events\nWHERE $__timeFilter(timestamp)\nGROUP BY time\nORDER BY time",
                SqlFormat.TIME_SERIES,
                (Column("time", ColumnKind.TIME), Column("p50", ColumnKind.NUMBER), Column("p99", ColumnKind.NUMBER)),
            ),
        ),
        unit="s",
        width=16,
    ),
    Panel(
        "Newest stored event",
        "Seconds since the newest stored event's timestamp. On a live cluster kube-apiserver audits something "
        "every few seconds, so anything above a minute means events are not arriving: check the webhook "
        "panels first, then the consumer.",
        PanelType.STAT,
        STORE,
        (
            SqlTarget(
                "SELECT dateDiff('second', max(timestamp), now64(6)) AS age\nFROM events\n"
                "WHERE $__timeFilter(timestamp)",
                SqlFormat.TABLE,
                (Column("age", ColumnKind.NUMBER),),
            ),
        ),
        unit="s",
        width=8,
        thresholds=((60, "orange"), (300, "red")),
    ),
)

FRESHNESS: tuple[Panel | Row, ...] = (
    Row("Freshness SLIs"),
    _prom(
        "Webhook: receive to PubAck",
        "Time from an EventList's arrival to the PubAck of its last message (every event of it durable in "
        "JetStream), accepted batches only, p50 and p99. This is what kube-apiserver waits for; near its "
        "--audit-webhook timeout it resends batches (duplicates) or, past its buffer, drops events.",
        *quantiles(_W + "receive_to_ack_seconds"),
        unit="s",
        width=8,
    ),
    _prom(
        "Consumer: event age at insert",
        "Age of each stored event when its insert returned: stageTimestamp (kube-apiserver's clock) to committed "
        "in ClickHouse, p50 and p99. Seconds is normal; it grows with any backlog (JetStream pending, store "
        "outage) and shows clock skew between the nodes and the consumer.",
        *quantiles(_C + "stored_event_age_seconds"),
        unit="s",
        width=8,
    ),
    _prom(
        f"Stored within {FRESHNESS_SLO_SECONDS:g} s (freshness SLO)",
        f"Share of stored events whose insert returned within {FRESHNESS_SLO_SECONDS:g} s of their stage: the "
        f"freshness SLI, objective {FRESHNESS_OBJECTIVE:.0%}. The ActivityFreshnessBudgetBurn alert fires when "
        "it stays low.",
        PromTarget(
            f"sum({rate(_C + 'stored_event_age_seconds_bucket' + _FRESH_LE)}) / "
            f"sum({rate(_C + 'stored_event_age_seconds_count')})",
            "within SLO",
        ),
        unit="percentunit",
        width=8,
    ),
)

DASHBOARD = Dashboard(
    uid="activity-pipeline",
    title="Activity / Audit pipeline",
    description="kube-apiserver audit webhook → JetStream → consumer → ClickHouse: throughput, latency, backlog",
    tags=("activity", "audit"),
    datasources=(PROM, STORE),
    items=(*WEBHOOK, *JETSTREAM, *CONSUMER, *END_TO_END, *FRESHNESS),
)
