"""Audit activity dashboard: who did what in the cluster, read straight from the ClickHouse events table."""

from __future__ import annotations

from activity.devtools.dashboards.model import (
    CLICKHOUSE,
    Column,
    ColumnKind,
    Dashboard,
    DatasourceVariable,
    Panel,
    PanelType,
    QueryVariable,
    Row,
    SqlFormat,
    SqlTarget,
)

# The events table has no cluster column: each cluster's pipeline writes its own store, so picking the
# cluster picks its ClickHouse datasource.
CLUSTER = DatasourceVariable("cluster", CLICKHOUSE, "Cluster", "The ClickHouse datasource of the cluster's audit store")
TENANT = QueryVariable(
    "tenant", "Tenant", "if(scope_name = '', '(none)', concat(scope_type, '/', scope_name))", CLUSTER
)
NAMESPACE = QueryVariable("namespace", "Namespace", "if(namespace = '', '(cluster-scoped)', namespace)", CLUSTER)
USER = QueryVariable("user", "User", "if(user = '', '(unknown)', user)", CLUSTER)
VARIABLES = (TENANT, NAMESPACE, USER)

WHERE = "WHERE $__timeFilter(timestamp)\n  AND " + "\n  AND ".join(v.filter_sql for v in VARIABLES)
WRITE_VERBS = "('create', 'update', 'patch', 'delete', 'deletecollection')"
# Stored copies of one request (redeliveries, or several stages kept) count once.
REQUESTS = "uniq(audit_id) AS requests"
OBJECT_RESOURCE = "if(api_group = '', resource, concat(resource, '.', api_group))"

T, S, N = ColumnKind.TIME, ColumnKind.TEXT, ColumnKind.NUMBER


def _sql(
    title: str,
    description: str,
    kind: PanelType,
    sql: str,
    columns: tuple[tuple[str, ColumnKind], ...],
    *,
    width: int = 12,
    height: int = 8,
    stacked: bool = False,
    unit: str = "short",
) -> Panel:
    fmt = SqlFormat.TIME_SERIES if kind is PanelType.TIMESERIES else SqlFormat.TABLE
    target = SqlTarget(sql, fmt, tuple(Column(name, k) for name, k in columns))
    return Panel(title, description, kind, CLUSTER, (target,), unit=unit, width=width, height=height, stacked=stacked)


def _latest(columns: str, condition: str) -> str:
    """The newest requests matching `condition`, one row per request."""
    return (
        f"SELECT {columns}\nFROM events\n{WHERE}\n  AND {condition}\n"
        "ORDER BY timestamp DESC\nLIMIT 1 BY audit_id\nLIMIT 200"
    )


_ROW_COLUMNS = "timestamp AS time, user, verb, namespace, name, status_code AS code"
_ROW_SHAPE = (("time", T), ("user", S), ("verb", S), ("namespace", S), ("name", S), ("code", N))

OVERVIEW: tuple[Panel | Row, ...] = (
    Row("Overview"),
    _sql(
        "Requests, writes, failures",
        "Distinct requests in the range for the chosen tenants, namespaces and users; how many changed "
        "something (create, update, patch, delete) and how many failed (code ≥ 400). A failure share far "
        "above the usual means something is hammering the API with bad requests.",
        PanelType.STAT,
        f"SELECT {REQUESTS},\n  uniqIf(audit_id, verb IN {WRITE_VERBS}) AS writes,\n"
        f"  uniqIf(audit_id, status_code >= 400) AS failed\nFROM events\n{WHERE}",
        (("requests", N), ("writes", N), ("failed", N)),
        width=8,
        height=6,
    ),
    _sql(
        "Requests over time by verb",
        "Requests per interval, stacked by verb. Reads (get, list, watch) dominate a healthy cluster; a spike "
        "of delete or a wall of list from one user is worth opening the tables below for.",
        PanelType.TIMESERIES,
        f"SELECT $__timeInterval(timestamp) AS time, verb, {REQUESTS}\nFROM events\n{WHERE}\n"
        "GROUP BY time, verb\nORDER BY time",
        (("time", T), ("verb", S), ("requests", N)),
        width=16,
        height=6,
        stacked=True,
    ),
    _sql(
        "Top users",
        "The ten users (people, service accounts, system components) with the most requests. Controllers and "
        "service accounts normally lead; a person at the top, or an unknown service account, deserves a look.",
        PanelType.BARGAUGE,
        f"SELECT user, {REQUESTS}\nFROM events\n{WHERE}\nGROUP BY user\nORDER BY requests DESC\nLIMIT 10",
        (("user", S), ("requests", N)),
    ),
    _sql(
        "Top resources",
        "The ten resources (resource.group) requested most. A resource suddenly at the top (secrets, "
        "clusterroles) means something new is reading or changing it in bulk.",
        PanelType.BARGAUGE,
        f"SELECT {OBJECT_RESOURCE} AS object_resource, {REQUESTS}\nFROM events\n{WHERE}\n"
        "GROUP BY object_resource\nORDER BY requests DESC\nLIMIT 10",
        (("object_resource", S), ("requests", N)),
    ),
)

FAILURES: tuple[Panel | Row, ...] = (
    Row("Failed requests"),
    _sql(
        "Failed requests by code",
        "Requests answered with a code ≥ 400, stacked by code. 403 is RBAC denying someone (steady 403 from "
        "one user is a missing role or a probe); 409 conflicts are normal for controllers; 5xx means the "
        "cluster's API server itself is failing.",
        PanelType.TIMESERIES,
        f"SELECT $__timeInterval(timestamp) AS time, toString(status_code) AS code, {REQUESTS}\n"
        f"FROM events\n{WHERE}\n  AND status_code >= 400\nGROUP BY time, code\nORDER BY time",
        (("time", T), ("code", S), ("requests", N)),
    ),
    _sql(
        "Who fails, on what",
        "The user, verb and resource pairs with the most failed requests, with the code and when it last "
        "happened. A user failing many times on one resource is usually a broken automation or someone "
        "probing permissions.",
        PanelType.TABLE,
        f"SELECT user, verb, {OBJECT_RESOURCE} AS object_resource, status_code AS code, {REQUESTS},\n"
        f"  max(timestamp) AS last_seen\nFROM events\n{WHERE}\n  AND status_code >= 400\n"
        "GROUP BY user, verb, object_resource, code\nORDER BY requests DESC\nLIMIT 20",
        (("user", S), ("verb", S), ("object_resource", S), ("code", N), ("requests", N), ("last_seen", T)),
    ),
)

SENSITIVE: tuple[Panel | Row, ...] = (
    Row("Deletions and secrets"),
    _sql(
        "Deletions",
        "The newest delete and deletecollection requests: who removed what, and whether it worked (code). "
        "Anything deleted in a production namespace by a person rather than a controller is worth checking.",
        PanelType.TABLE,
        _latest(f"{_ROW_COLUMNS}, {OBJECT_RESOURCE} AS object_resource", "verb IN ('delete', 'deletecollection')"),
        (*_ROW_SHAPE, ("object_resource", S)),
        height=10,
    ),
    _sql(
        "Secret access",
        "The newest requests on core secrets, reads included. Controllers reading their own namespace's "
        "secrets is normal; a person listing secrets, or any read across namespaces, is a red flag.",
        PanelType.TABLE,
        _latest(_ROW_COLUMNS, "resource = 'secrets' AND api_group = ''"),
        _ROW_SHAPE,
        height=10,
    ),
)

TENANTS: tuple[Panel | Row, ...] = (
    Row("Tenants"),
    _sql(
        "Requests by tenant",
        "Requests per interval for each tenant (scope type/name from the platform.miloapis.com/scope "
        "annotations; (none) for requests outside any tenant). One tenant suddenly dominating is a noisy "
        "neighbour or a runaway automation.",
        PanelType.TIMESERIES,
        f"SELECT $__timeInterval(timestamp) AS time, {TENANT.expression} AS tenant, {REQUESTS}\n"
        f"FROM events\n{WHERE}\nGROUP BY time, tenant\nORDER BY time",
        (("time", T), ("tenant", S), ("requests", N)),
        stacked=True,
    ),
    _sql(
        "Tenant summary",
        "Per tenant: requests, writes, failures and distinct users in the range. A tenant with a high failure "
        "share or an unusual number of users stands out here.",
        PanelType.TABLE,
        f"SELECT {TENANT.expression} AS tenant, {REQUESTS},\n"
        f"  uniqIf(audit_id, verb IN {WRITE_VERBS}) AS writes,\n"
        "  uniqIf(audit_id, status_code >= 400) AS failed,\n  uniq(user) AS users\n"
        f"FROM events\n{WHERE}\nGROUP BY tenant\nORDER BY requests DESC",
        (("tenant", S), ("requests", N), ("writes", N), ("failed", N), ("users", N)),
    ),
)

DASHBOARD = Dashboard(
    uid="activity-audit",
    title="Activity / Audit activity",
    description="Who did what: Kubernetes audit events from the Activity store (ClickHouse)",
    tags=("activity", "audit"),
    datasources=(CLUSTER,),
    variables=VARIABLES,
    items=(*OVERVIEW, *FAILURES, *SENSITIVE, *TENANTS),
    time_from="now-24h",
)
