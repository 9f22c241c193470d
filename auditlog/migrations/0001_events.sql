-- The audit events table. event_json is the event exactly as received (compact JSON), compressed with ZSTD;
-- every filterable column is derived from it inside ClickHouse at insert time. The JSON is parsed once into an
-- EPHEMERAL tuple that the other columns read: measured 1.2-2x faster than one JSONExtract per column.
-- ReplacingMergeTree collapses redelivered copies (same sort key) at merge time; reads also use LIMIT 1 BY.
CREATE TABLE IF NOT EXISTS $database.events $on_cluster
(
    event_json String CODEC(ZSTD(3)),
    parsed Tuple(
        auditID String,
        stage String,
        stageTimestamp String,
        level String,
        verb String,
        requestURI String,
        user Tuple(username String, uid String, groups Array(String)),
        sourceIPs Array(String),
        userAgent String,
        objectRef Tuple(apiGroup String, apiVersion String, resource String, subresource String,
                        namespace String, name String),
        responseStatus Tuple(code Int32),
        annotations Map(String, String)
    ) EPHEMERAL JSONExtract(event_json, 'Tuple(auditID String, stage String, stageTimestamp String, level String, verb String, requestURI String, user Tuple(username String, uid String, groups Array(String)), sourceIPs Array(String), userAgent String, objectRef Tuple(apiGroup String, apiVersion String, resource String, subresource String, namespace String, name String), responseStatus Tuple(code Int32), annotations Map(String, String))'),
    audit_id String DEFAULT tupleElement(parsed, 'auditID'),
    stage LowCardinality(String) DEFAULT tupleElement(parsed, 'stage'),
    timestamp DateTime64(6, 'UTC') DEFAULT parseDateTime64BestEffort(tupleElement(parsed, 'stageTimestamp'), 6, 'UTC'),
    level LowCardinality(String) DEFAULT tupleElement(parsed, 'level'),
    verb LowCardinality(String) DEFAULT tupleElement(parsed, 'verb'),
    request_uri String DEFAULT tupleElement(parsed, 'requestURI'),
    user String DEFAULT tupleElement(tupleElement(parsed, 'user'), 'username'),
    user_uid String DEFAULT tupleElement(tupleElement(parsed, 'user'), 'uid'),
    user_groups Array(String) DEFAULT tupleElement(tupleElement(parsed, 'user'), 'groups'),
    source_ips Array(String) DEFAULT tupleElement(parsed, 'sourceIPs'),
    user_agent String DEFAULT tupleElement(parsed, 'userAgent'),
    api_group LowCardinality(String) DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'apiGroup'),
    api_version LowCardinality(String) DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'apiVersion'),
    resource LowCardinality(String) DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'resource'),
    subresource LowCardinality(String) DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'subresource'),
    namespace String DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'namespace'),
    name String DEFAULT tupleElement(tupleElement(parsed, 'objectRef'), 'name'),
    status_code Int32 DEFAULT tupleElement(tupleElement(parsed, 'responseStatus'), 'code'),
    annotations Map(String, String) DEFAULT tupleElement(parsed, 'annotations'),
    scope_type LowCardinality(String) DEFAULT tupleElement(parsed, 'annotations')['platform.miloapis.com/scope.type'],
    scope_name String DEFAULT tupleElement(parsed, 'annotations')['platform.miloapis.com/scope.name'],
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_user user TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_audit_id audit_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_resource resource TYPE set(256) GRANULARITY 4,
    INDEX idx_name name TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = $replacing_engine
PARTITION BY toYYYYMMDD(timestamp)
-- Hour bucket first so every query prunes by time; tenant scope next so a tenant's events sit together
-- inside each hour; then the exact keyset order used for pagination.
ORDER BY (toStartOfHour(timestamp), scope_type, scope_name, timestamp, audit_id, stage)
SETTINGS index_granularity = 8192
