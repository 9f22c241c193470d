"""The read path both the API server and the tests use: one keyset page of stored events, newest first.

At-least-once delivery can store an event twice; `LIMIT 1 BY` on the full key keeps one copy per
(timestamp, auditID, stage) whether or not ReplacingMergeTree has merged the copies yet, and the keyset
condition is strictly "after the last row returned", so a copy can never reappear on a later page.
The stored JSON comes back as bytes, ready to be spliced into a response without re-serialising; it is
compact one-line JSON (the consumer guarantees it), so TabSeparatedRaw lines split safely.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from auditlog.fields import SCOPE_NAME_COLUMN, SCOPE_TYPE_COLUMN
from auditlog.storage import EVENTS_TABLE, Store

# Parameter names the read helper owns; a caller's filter must use other names (the CEL translator uses f_N).
RESERVED_PARAMS = frozenset(
    {
        "r_start",
        "r_end",
        "r_scope_type",
        "r_scope_name",
        "r_after_us",
        "r_after_id",
        "r_after_stage",
        "r_limit",
    }
)


@dataclass(frozen=True)
class Scope:
    """A tenant: events whose scope annotations carry this type and name."""

    type: str
    name: str


@dataclass(frozen=True)
class Position:
    """The key of the last row of a page; the next page starts strictly after (older than) it."""

    timestamp_us: int
    audit_id: str
    stage: str


@dataclass(frozen=True)
class PageQuery:
    start_us: int  # inclusive, microseconds since the epoch
    end_us: int  # exclusive
    limit: int
    where: str = "1"  # a parameterised SQL condition over the catalogue's columns
    params: Mapping[str, Any] = field(default_factory=dict)
    scope: Scope | None = None  # None: the platform, every tenant
    after: Position | None = None


@dataclass(frozen=True)
class Page:
    events: tuple[bytes, ...]  # stored event_json rows, newest first
    next_after: Position | None  # None when this is the last page


def page_sql(query: PageQuery) -> tuple[str, dict[str, Any]]:
    """The SELECT for one page (limit + 1 rows, to know whether another page exists) and its parameters."""
    clash = RESERVED_PARAMS & set(query.params)
    if clash:
        raise ValueError(f"filter parameters use reserved names: {sorted(clash)}")
    conditions = [
        "timestamp >= fromUnixTimestamp64Micro({r_start:Int64}, 'UTC')",
        "timestamp < fromUnixTimestamp64Micro({r_end:Int64}, 'UTC')",
    ]
    params: dict[str, Any] = {"r_start": query.start_us, "r_end": query.end_us, "r_limit": query.limit + 1}
    if query.scope is not None:
        conditions.append(f"{SCOPE_TYPE_COLUMN} = {{r_scope_type:String}}")
        conditions.append(f"{SCOPE_NAME_COLUMN} = {{r_scope_name:String}}")
        params |= {"r_scope_type": query.scope.type, "r_scope_name": query.scope.name}
    if query.after is not None:
        # The plain timestamp bound lets the primary index prune; the tuple comparison is the exact keyset.
        conditions.append("timestamp <= fromUnixTimestamp64Micro({r_after_us:Int64}, 'UTC')")
        conditions.append(
            "(timestamp, audit_id, stage) < "
            "(fromUnixTimestamp64Micro({r_after_us:Int64}, 'UTC'), {r_after_id:String}, {r_after_stage:String})"
        )
        params |= {
            "r_after_us": query.after.timestamp_us,
            "r_after_id": query.after.audit_id,
            "r_after_stage": query.after.stage,
        }
    conditions.append(f"({query.where})")
    params |= dict(query.params)
    sql = (
        # auditID is client-controlled (the Audit-ID header) and may hold a tab: it travels hex-encoded.
        "SELECT toUnixTimestamp64Micro(timestamp), hex(audit_id), stage, event_json "
        f"FROM {EVENTS_TABLE} WHERE " + " AND ".join(conditions) + " "
        "ORDER BY timestamp DESC, audit_id DESC, stage DESC "
        "LIMIT 1 BY timestamp, audit_id, stage "
        "LIMIT {r_limit:UInt32}"
    )
    return sql, params


async def read_page(store: Store, query: PageQuery, *, sql_comment: str = "") -> Page:
    """Fetch one page. `sql_comment` (e.g. a W3C traceparent) is prepended for tracing in the query log."""
    sql, params = page_sql(query)
    if sql_comment:
        sql = f"/* {sql_comment.replace('*/', '')} */ {sql}"
    lines = await store.query_tsv(sql, params)
    rows = [line.split(b"\t", 3) for line in lines]
    has_more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_after = None
    if has_more and rows:
        ts, audit_id, stage, _ = rows[-1]
        next_after = Position(int(ts), bytes.fromhex(audit_id.decode()).decode(), stage.decode())
    return Page(tuple(r[3] for r in rows), next_after)
