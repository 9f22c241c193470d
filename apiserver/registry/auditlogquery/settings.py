"""The operator's limits for AuditLogQuery (flags --max-page-size, --max-query-window, --max-query-memory,
--max-query-rows, --cursor-key-file)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from apiserver.apis.activity.v1alpha1.defaults import (
    DEFAULT_CURSOR_TTL,
    DEFAULT_MAX_PAGE_SIZE,
    DEFAULT_MAX_QUERY_MEMORY_BYTES,
    DEFAULT_MAX_WINDOW,
)


@dataclass(frozen=True)
class QuerySettings:
    """`cursor_key` signs continue tokens; every replica behind one APIService needs the same key, or a page-2
    request that lands on another replica is refused. `cursor.load_cursor_key`
    reads it.
    """

    cursor_key: bytes
    max_page_size: int = DEFAULT_MAX_PAGE_SIZE
    max_window: timedelta = DEFAULT_MAX_WINDOW
    cursor_ttl: timedelta = DEFAULT_CURSOR_TTL
    max_query_memory_bytes: int = DEFAULT_MAX_QUERY_MEMORY_BYTES  # 0: the store's own limit
    max_query_rows: int = 0  # rows one statement may read; 0: no limit
