"""The AuditLogQuery resource as the query service sees it: what is asked (QuerySpec), what comes back
(QueryResult) and the operator's limits (QuerySettings). The HTTP layer decodes `spec` into a QuerySpec, calls
`QueryService.execute(spec, user)` (apiserver.auditlogquery.service) and renders the QueryResult as `status`;
every user error is an `InvalidQuery` (apiserver.auditlogquery.errors) naming the spec field to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from auditlog.paging import DEFAULT_LIMIT as DEFAULT_LIMIT  # re-exported: the server's modules import it here
from auditlog.paging import MAX_PAGE_SIZE

DEFAULT_MAX_PAGE_SIZE = MAX_PAGE_SIZE  # the default of --max-page-size, shared with the plugin
DEFAULT_START_TIME = "now-24h"
DEFAULT_END_TIME = "now"
DEFAULT_MAX_WINDOW = timedelta(days=30)
DEFAULT_CURSOR_TTL = timedelta(hours=1)
# Per statement in the store. A page over a busy 30-day window reads key columns only and stays far below; the
# backstop for what the filter cost estimate cannot see (real sizes beyond the assumed ones).
DEFAULT_MAX_QUERY_MEMORY_BYTES = 1024**3


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


@dataclass(frozen=True)
class QuerySettings:
    """Operator limits (flags --max-page-size, --max-query-window, --max-query-memory, --max-query-rows,
    --cursor-key-file).

    `cursor_key` signs continue tokens; every replica behind one APIService needs the same key, or a page-2
    request that lands on another replica is refused. `apiserver.auditlogquery.cursor.load_cursor_key` reads it.
    """

    cursor_key: bytes
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    max_window: timedelta = DEFAULT_MAX_WINDOW
    cursor_ttl: timedelta = DEFAULT_CURSOR_TTL
    max_query_memory_bytes: int = DEFAULT_MAX_QUERY_MEMORY_BYTES  # 0: the store's own limit
    max_query_rows: int = 0  # rows one statement may read; 0: no limit
