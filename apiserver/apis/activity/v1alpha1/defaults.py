"""What an AuditLogQuery means when a field is left out, and the operator limits' defaults."""

from __future__ import annotations

from datetime import timedelta

from auditlog.paging import DEFAULT_LIMIT as DEFAULT_LIMIT  # re-exported: one default, shared with the plugin
from auditlog.paging import MAX_PAGE_SIZE

DEFAULT_MAX_PAGE_SIZE = MAX_PAGE_SIZE  # the default of --max-page-size, shared with the plugin
DEFAULT_START_TIME = "now-24h"
DEFAULT_END_TIME = "now"
DEFAULT_MAX_WINDOW = timedelta(days=30)
DEFAULT_CURSOR_TTL = timedelta(hours=1)
# Per statement in the store: the backstop for what the filter cost estimate cannot see.
DEFAULT_MAX_QUERY_MEMORY_BYTES = 1024**3


def window_texts(start_time: str, end_time: str) -> tuple[str, str]:
    """An empty string is how many clients write an unset field: it means the default, as for Kubernetes."""
    return start_time or DEFAULT_START_TIME, end_time or DEFAULT_END_TIME
