"""The read path both the API server and the tests use: one keyset page of stored events, newest first.

Two phases, in one trip to a worker thread: first the keys (timestamp, auditID, stage) of the newest matching
rows, from the small key columns only; then the stored JSON of just those keys. Reading event_json for every
row of the window and sorting it all (one statement) was measured ~8x slower on a 1-hour window of 360k events.

At-least-once delivery can store an event twice; copies share the key, so phase 1 collapses adjacent equal keys
and phase 2 keeps one copy per key with `LIMIT 1 BY`, whether or not ReplacingMergeTree has merged them yet.
A client can reuse an Audit-ID, so two different requests may share (timestamp, auditID, stage): phase 2's key,
and the keyset's, end with event_id (migration 0002: a hash of the exact stored bytes), which only true copies
share. Phase 1 stays on the three columns (sorting a 1-hour window of 360k rows by event_id too was measured
1.4-1.7x slower; and rows stored before 0002 compute event_id from event_json when read): it takes the last
page's key inclusively, and phase 2, over a few rows, applies the exact four-column keyset. That condition is
strictly "after the last row returned", so events differing only in event_id are neither skipped nor repeated at
a page boundary, and a copy can never reappear on a later page.
The stored JSON comes back as bytes, ready to be spliced into a response without re-serialising; it is
one-line JSON, no raw newline, carriage return or tab anywhere (the consumer guarantees it), so it can end a
TabSeparatedRaw line and the lines split safely.

Every statement carries the caller's limits as ClickHouse settings (ReadLimits): the time left before the
request's deadline, so a statement whose request was abandoned (timeout, client gone) stops in the engine instead
of running on in a worker thread, and a memory and rows ceiling, so one query cannot take the machine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clickhouse_connect.driver.client import Client

from auditlog.fields import SCOPE_NAME_COLUMN, SCOPE_TYPE_COLUMN
from auditlog.refusals import DeadlinePassed
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
        "r_after_event",
        "r_limit",
        "r_candidates",
        "r_first_us",
        "r_last_us",
        "r_keys",
    }
)


# toStartOfHour(timestamp) orders exactly like timestamp, and matches the table's sort-key prefix, so a scoped
# read (scope fixed by WHERE) streams in key order and stops early instead of sorting its whole window.
_ORDER = "ORDER BY toStartOfHour(timestamp) DESC, timestamp DESC, audit_id DESC, stage DESC"
_ROW_ORDER = f"{_ORDER}, event_id DESC"
_CANDIDATE_FACTOR = 2  # phase 1 fetches this many keys per wanted row; more rounds only when copies abound


_Key = tuple[int, str, str]  # (timestamp µs, auditID, stage): what phase 1 sorts and collapses on


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
    event_id: str  # the 16-byte identity in upper-case hex, as ClickHouse's hex() spells it


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
class ReadLimits:
    """What one page's statements may use in the engine; 0 / None: the engine's own limits."""

    deadline: float | None = None  # time.monotonic() by which the page must be read (the request's deadline)
    max_memory_bytes: int = 0  # max_memory_usage per statement: beyond it, MEMORY_LIMIT_EXCEEDED (241)
    max_rows_to_read: int = 0  # per statement: beyond it, TOO_MANY_ROWS (158)

    def settings(self) -> dict[str, int | float]:
        """ClickHouse settings for the next statement (the time budget shrinks as the page's statements run)."""
        settings: dict[str, int | float] = {}
        if self.deadline is not None:
            left = round(self.deadline - time.monotonic(), 3)
            if left <= 0:  # (0 would mean no limit to the engine)
                raise DeadlinePassed("the request's deadline passed before the statement was sent")
            settings["max_execution_time"] = left
        if self.max_memory_bytes:
            settings["max_memory_usage"] = self.max_memory_bytes
        if self.max_rows_to_read:
            settings["max_rows_to_read"] = self.max_rows_to_read
        return settings


NO_LIMITS = ReadLimits()


@dataclass(frozen=True)
class Page:
    events: tuple[bytes, ...]  # stored event_json rows, newest first
    next_after: Position | None  # None when this is the last page


def _conditions(query: PageQuery) -> tuple[str, dict[str, Any]]:
    """The WHERE of a page (window, scope, keyset position, filter) and its parameters."""
    clash = RESERVED_PARAMS & set(query.params)
    if clash:
        raise ValueError(f"filter parameters use reserved names: {sorted(clash)}")
    conditions = [
        "timestamp >= fromUnixTimestamp64Micro({r_start:Int64}, 'UTC')",
        "timestamp < fromUnixTimestamp64Micro({r_end:Int64}, 'UTC')",
    ]
    params: dict[str, Any] = {"r_start": query.start_us, "r_end": query.end_us}
    if query.scope is not None:
        conditions.append(f"{SCOPE_TYPE_COLUMN} = {{r_scope_type:String}}")
        conditions.append(f"{SCOPE_NAME_COLUMN} = {{r_scope_name:String}}")
        params |= {"r_scope_type": query.scope.type, "r_scope_name": query.scope.name}
    if query.after is not None:
        # The plain timestamp bound lets the primary index prune. Inclusive: the last row's key may hold more
        # events (same key, other event_id); rows_sql adds the exact keyset.
        conditions.append("timestamp <= fromUnixTimestamp64Micro({r_after_us:Int64}, 'UTC')")
        conditions.append(
            "(timestamp, audit_id, stage) <= "
            "(fromUnixTimestamp64Micro({r_after_us:Int64}, 'UTC'), {r_after_id:String}, {r_after_stage:String})"
        )
        params |= {
            "r_after_us": query.after.timestamp_us,
            "r_after_id": query.after.audit_id,
            "r_after_stage": query.after.stage,
        }
    conditions.append(f"({query.where})")
    params |= dict(query.params)
    return " AND ".join(conditions), params


def keys_sql(query: PageQuery) -> tuple[str, dict[str, Any]]:
    """Phase 1: the keys of the newest `r_candidates` matching rows, copies included (set r_candidates).

    A plain ORDER BY … LIMIT is a cheap partial sort over the small key columns; deduplicating here instead
    (LIMIT 1 BY, DISTINCT) forces a full sort of the window, measured 5-10x slower at 360k rows.
    """
    where, params = _conditions(query)
    # auditID is client-controlled (the Audit-ID header) and may hold a tab: it travels hex-encoded.
    sql = (
        f"SELECT toUnixTimestamp64Micro(timestamp), hex(audit_id), stage FROM {EVENTS_TABLE} WHERE {where} "
        f"{_ORDER} LIMIT {{r_candidates:UInt32}}"
    )
    return sql, params


def rows_sql(query: PageQuery, keys: Sequence[_Key], limit: int) -> tuple[str, dict[str, Any]]:
    """Phase 2: the key and stored JSON of the first `limit` events of these keys (one copy each), newest first.

    The page's own conditions are applied again, so the rows can only ever be ones the query selects.
    """
    where, params = _conditions(query)
    params |= {"r_first_us": keys[-1][0], "r_last_us": keys[0][0], "r_keys": list(keys), "r_limit": limit}
    after = ""
    if query.after is not None:
        after = (
            "AND (timestamp, audit_id, stage, event_id) < (fromUnixTimestamp64Micro({r_after_us:Int64}, 'UTC'), "
            "{r_after_id:String}, {r_after_stage:String}, unhex({r_after_event:String})) "
        )
        params["r_after_event"] = query.after.event_id
    sql = (
        "SELECT toUnixTimestamp64Micro(timestamp), hex(audit_id), stage, hex(event_id), event_json "
        f"FROM {EVENTS_TABLE} WHERE {where} "
        # the key range lets the primary index skip every hour the page does not touch
        "AND timestamp >= fromUnixTimestamp64Micro({r_first_us:Int64}, 'UTC') "
        "AND timestamp <= fromUnixTimestamp64Micro({r_last_us:Int64}, 'UTC') "
        "AND (toUnixTimestamp64Micro(timestamp), audit_id, stage) IN {r_keys:Array(Tuple(Int64, String, String))} "
        f"{after}{_ROW_ORDER} LIMIT 1 BY timestamp, audit_id, stage, event_id LIMIT {{r_limit:UInt32}}"
    )
    return sql, params


def _keys(lines: Sequence[bytes]) -> list[_Key]:
    """Distinct keys in order (rows sharing a key are adjacent, as the rows are sorted by the key)."""
    keys: list[_Key] = []
    for line in lines:
        ts, audit_id, stage = line.split(b"\t")
        key = (int(ts), bytes.fromhex(audit_id.decode()).decode(), stage.decode())
        if not keys or keys[-1] != key:
            keys.append(key)
    return keys


def _row(line: bytes) -> tuple[Position, bytes]:
    ts, audit_id, stage, event_id, event_json = line.split(b"\t", 4)
    return Position(int(ts), bytes.fromhex(audit_id.decode()).decode(), stage.decode(), event_id.decode()), event_json


def read_page_sync(client: Client, query: PageQuery, *, sql_comment: str = "", limits: ReadLimits = NO_LIMITS) -> Page:
    """One page on a sync client: the read path's SQL exactly, for read_page and for benchmarks."""
    prefix = f"/* {sql_comment.replace('*/', '')} */ " if sql_comment else ""
    wanted = query.limit + 1  # one more than the page, to know whether another page exists
    # Each key has at least one event still to show, but the last page's key may have none left.
    wanted_keys = wanted + (query.after is not None)
    candidates = wanted_keys * _CANDIDATE_FACTOR
    sql, params = keys_sql(query)
    while True:
        raw = client.raw_query(
            prefix + sql,
            parameters=params | {"r_candidates": candidates},
            settings=limits.settings(),
            fmt="TabSeparatedRaw",
        )
        lines = raw.splitlines()
        keys = _keys(lines)
        # Enough distinct keys, or the window is exhausted; otherwise copies (or events sharing a key) used up the
        # candidates.
        if len(keys) >= wanted_keys or len(lines) < candidates:
            break
        candidates *= _CANDIDATE_FACTOR
    keys = keys[:wanted_keys]
    if not keys:
        return Page((), None)
    sql, params = rows_sql(query, keys, wanted)
    raw = client.raw_query(prefix + sql, parameters=params, settings=limits.settings(), fmt="TabSeparatedRaw")
    rows = [_row(line) for line in raw.splitlines()]
    has_more = len(rows) > query.limit
    return Page(tuple(event for _, event in rows[: query.limit]), rows[query.limit - 1][0] if has_more else None)


async def read_page(store: Store, query: PageQuery, *, sql_comment: str = "", limits: ReadLimits = NO_LIMITS) -> Page:
    """Fetch one page. `sql_comment` (e.g. a W3C traceparent) is prepended for tracing in the query log."""
    return await store.run(lambda client: read_page_sync(client, query, sql_comment=sql_comment, limits=limits))
