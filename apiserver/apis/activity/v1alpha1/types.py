"""The AuditLogQuery type as the query service sees it: what is asked (QuerySpec) and what comes back
(QueryResult, rendered as `status`)."""

from __future__ import annotations

from dataclasses import dataclass

from apiserver.apis.activity.v1alpha1.defaults import DEFAULT_END_TIME, DEFAULT_START_TIME


@dataclass(frozen=True)
class QuerySpec:
    """`spec` of an AuditLogQuery, as the user wrote it (empty string / None: not given, the default applies).

    Times are RFC3339 with any offset, `now`, or `now-<n><s|m|h|d|w>`; the window is [start_time, end_time).
    """

    start_time: str = DEFAULT_START_TIME
    end_time: str = DEFAULT_END_TIME
    filter: str = ""  # a CEL expression over the audit-event fields; "" selects everything
    limit: int | None = None  # None: DEFAULT_LIMIT
    continue_token: str = ""  # `spec.continue`: the `status.continue` of the previous page


@dataclass(frozen=True)
class QueryResult:
    """`status` of an AuditLogQuery."""

    results_json: bytes  # a JSON array spliced from the stored event_json rows, newest first
    continue_token: str  # "" when there is no further page
    effective_start_time: str  # RFC3339, UTC, microseconds: the absolute window actually queried
    effective_end_time: str
    count: int  # how many events results_json holds (for metrics and logs; no need to parse the array)
