"""Activity apiserver dashboard: the aggregated API server behind `kubectl activity`, is it answering well?"""

from __future__ import annotations

from activity.devtools.dashboards.model import (
    PROMETHEUS,
    Dashboard,
    DatasourceVariable,
    LabelVariable,
    Panel,
    PanelType,
    PromTarget,
    Row,
)
from activity.devtools.dashboards.promql import quantiles, rate

PROM = DatasourceVariable("datasource", PROMETHEUS, "Prometheus", "Prometheus scraping the Activity API server")
# kube-apiserver exports the same apiserver_* names: the job variable keeps its series out of these panels.
JOB = LabelVariable("job", "Job", "activity_query_duration_seconds_count", "job", PROM)
SEL = '{job=~"$job"}'
SERVER_ERRORS = '{job=~"$job", code=~"5.."}'
AUTH_FAILURES = '{job=~"$job", code=~"401|403"}'


def _prom(
    title: str, description: str, *targets: PromTarget, unit: str = "short", width: int = 12, stacked: bool = False
) -> Panel:
    return Panel(title, description, PanelType.TIMESERIES, PROM, targets, unit=unit, width=width, stacked=stacked)


REQUESTS: tuple[Panel | Row, ...] = (
    Row("Requests (kube-apiserver's names)"),
    _prom(
        "Request rate by code",
        "Requests per second by HTTP code, kube-apiserver's apiserver_request_total. 201 is a served "
        "AuditLogQuery; 4xx are client mistakes (a bad filter: 400/422, no permission: 403); any 5xx is ours: "
        "read the API server's log for the request.",
        PromTarget(f"sum by (code) ({rate('apiserver_request_total' + SEL)})", "{{code}}"),
        unit="reqps",
        stacked=True,
    ),
    _prom(
        "Server error ratio",
        "Share of requests answered 5xx. Should be 0; above 1% for several minutes is an incident (the store "
        "is unreachable or queries time out: see storage latency below).",
        PromTarget(
            # `or vector(0)`: no 5xx series at all is a ratio of 0, not "no data"
            f"(sum({rate('apiserver_request_total' + SERVER_ERRORS)}) or vector(0)) "
            f"/ sum({rate('apiserver_request_total' + SEL)})",
            "5xx ratio",
        ),
        unit="percentunit",
    ),
    _prom(
        "Request latency by verb",
        "apiserver_request_duration_seconds p50 and p99 by verb. kubectl waits for this: p99 above a second "
        "makes `kubectl activity` feel slow; above 60 s kube-apiserver's proxy gives up on the request.",
        *quantiles("apiserver_request_duration_seconds", by=("verb",), selector=SEL),
        unit="s",
    ),
    _prom(
        "In-flight requests",
        "Requests being served right now by kind (readOnly, mutating). Low single digits is normal; a rising "
        "floor means requests are stuck waiting on the store.",
        PromTarget(f"sum by (request_kind) (apiserver_current_inflight_requests{SEL})", "{{request_kind}}"),
        width=6,
    ),
    _prom(
        "Authentication and authorization failures",
        "Requests refused 401 (no valid credentials: an expired token or an unknown client certificate) and "
        "403 (authenticated, but SubjectAccessReview denied it). A burst of 401 after a certificate rotation "
        "means kube-apiserver's front-proxy certificate is not trusted; steady 403 is a user lacking RBAC.",
        PromTarget(f"sum by (code) ({rate('apiserver_request_total' + AUTH_FAILURES)})", "{{code}}"),
        unit="reqps",
        width=6,
    ),
)

QUERIES: tuple[Panel | Row, ...] = (
    Row("AuditLogQuery"),
    _prom(
        "Queries by outcome",
        "AuditLogQuery requests per second by outcome: ok, invalid (a filter or time range the server refused "
        "with a message), forbidden, error. error should be zero; a high invalid share means users need help "
        "with CEL filters.",
        PromTarget(f"sum by (outcome) ({rate('activity_query_duration_seconds_count' + SEL)})", "{{outcome}}"),
        unit="reqps",
        stacked=True,
    ),
    _prom(
        "Query latency by outcome",
        "Time to answer one AuditLogQuery (validate, compile CEL, read the store, respond), p50 and p99. The "
        "storage read dominates; if this grows while storage latency does not, CEL compilation or response "
        "encoding is the cost.",
        *quantiles("activity_query_duration_seconds", by=("outcome",), selector=SEL),
        unit="s",
    ),
    _prom(
        "CEL filters rejected",
        "Filters refused per second, all kinds together (parse error, type check error, construct the SQL "
        "translator does not support). Each one already answered the user with a message saying what to fix; "
        "a sudden rise after an upgrade means a filter form that used to work is now refused.",
        PromTarget(f"sum({rate('activity_cel_rejected_total' + SEL)})", "rejected"),
        unit="reqps",
        width=8,
    ),
    _prom(
        "Storage query latency",
        "Latency of SELECTs sent to ClickHouse, p50 and p99, by outcome. Tens of milliseconds is normal for a "
        "one-page read; seconds means the time range or filter scans too much (or ClickHouse is busy merging).",
        *quantiles("activity_storage_query_duration_seconds", by=("outcome",), selector=SEL),
        unit="s",
        width=8,
    ),
    _prom(
        "Results per query",
        "Events returned per AuditLogQuery page: mean and p99. Many empty pages means users query windows "
        "with nothing in them; p99 at the page limit means they page through large results (each page costs "
        "a storage read).",
        PromTarget(
            f"sum({rate('activity_query_results_sum' + SEL)}) / sum({rate('activity_query_results_count' + SEL)})",
            "mean",
        ),
        PromTarget(
            f"histogram_quantile(0.99, sum by (le) ({rate('activity_query_results_bucket' + SEL)}))",
            "p99",
        ),
        width=8,
    ),
)

DASHBOARD = Dashboard(
    uid="activity-apiserver",
    title="Activity / API server",
    description="The activity.miloapis.com aggregated API server: requests, latency, errors, AuditLogQuery",
    tags=("activity", "apiserver"),
    datasources=(PROM,),
    variables=(JOB,),
    items=(*REQUESTS, *QUERIES),
)
