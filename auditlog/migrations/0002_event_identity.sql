-- An event's identity: the first 16 bytes of the SHA-256 of its exact stored bytes. kube-apiserver takes the
-- Audit-ID from clients, so two different requests can share (timestamp, auditID, stage, scope), the whole 0001
-- sort key: ReplacingMergeTree kept one of them (at insert, within a block, and at every merge). Appended to the
-- sort key, only byte-identical copies (redeliveries) share a key and collapse. SHA-256 rather than a fast hash
-- because the content is the attacker's to choose; its insert cost is in docs/benchmarks.md.
--
-- ClickHouse appends a column to the sort key only in the ALTER that adds it, and only without a default (so that
-- existing parts stay sorted); the expression is set by a second ALTER. Parts written before it compute the
-- column from event_json when read (until a merge stores it) and stay sorted: ReplacingMergeTree already left
-- every part with one row per 0001 key, so any column appended to that key keeps each part's order. Both
-- statements are no-ops when run again, so a migration interrupted between them can simply be re-run.
-- PRIMARY KEY stays the 0001 key: the index does not grow.
ALTER TABLE $database.events $on_cluster
    ADD COLUMN IF NOT EXISTS event_id FixedString(16),
    MODIFY ORDER BY (toStartOfHour(timestamp), scope_type, scope_name, timestamp, audit_id, stage, event_id);

ALTER TABLE $database.events $on_cluster
    MODIFY COLUMN event_id FixedString(16) MATERIALIZED substring(SHA256(event_json), 1, 16);
