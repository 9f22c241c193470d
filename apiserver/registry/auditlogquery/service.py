"""The AuditLogQuery query: validate the spec, confine it to the caller's scope, read one keyset page, answer.

Following the data: spec → limit, filter (CEL → SQL), window (first page) or cursor (later pages) → one
`read_page` (dedupe, keyset, scope in SQL) → the stored JSON rows spliced into the results array, and a signed
cursor for the next page. Every user error is collected into one InvalidQuery so the user sees all of them at
once, as kubectl prints a Kubernetes validation error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache

from apiserver.apis.activity.v1alpha1.defaults import window_texts
from apiserver.apis.activity.v1alpha1.types import QueryResult, QuerySpec
from apiserver.apis.activity.v1alpha1.validation import validate_limit
from apiserver.machinery.fielderrors import FieldError
from apiserver.machinery.request import UserInfo
from apiserver.registry.auditlogquery.cursor import Cursor, CursorCodec, check_binding, digest, window_digest
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.filter import SqlFilter, compile_filter
from apiserver.registry.auditlogquery.scope import scope_of
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.auditlogquery.timerange import TimeWindow, resolve_window, to_us
from auditlog.reading import PageQuery, ReadLimits, read_page
from auditlog.refusals import Refusal, refusal
from auditlog.storage import Store, StoreError

_NARROW = "narrow the window (spec.startTime, spec.endTime) or make spec.filter more selective"


class QueryTimedOut(Exception):
    """The store stopped the query at the request's deadline (the request's own timeout usually answers first)."""


@lru_cache(maxsize=512)
def _compiled(source: str) -> SqlFilter:
    """CEL compile + check + translate costs far more than the page read for cheap queries; users page through
    the same filter, so the translation is cached (errors are not cached: they raise)."""
    return compile_filter(source)


def utc_now() -> datetime:
    return datetime.now(UTC)


class QueryService:
    def __init__(self, store: Store, settings: QuerySettings, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._codec = CursorCodec(settings.cursor_key)

    async def execute(
        self, spec: QuerySpec, user: UserInfo, *, sql_comment: str = "", deadline: float | None = None
    ) -> QueryResult:
        """One page of events for `user`. Raises InvalidQuery (422) for any spec error or a query over the store
        limits, ScopeUnresolved (403) when the caller's scope extras are unusable, QueryTimedOut when the store
        stopped it at `deadline` (time.monotonic()), StoreError when the store fails.
        `sql_comment` (e.g. a W3C traceparent) is attached to the SQL for the query log."""
        scope = scope_of(user)
        now = self._clock()
        start_text, end_text = window_texts(spec.start_time, spec.end_time)
        limit, errors = validate_limit(spec.limit, self._settings.max_page_size)
        sql_filter = self._filter(spec.filter, errors)
        window: TimeWindow | None = None
        cursor: Cursor | None = None
        try:
            if spec.continue_token:
                cursor = self._codec.decode(spec.continue_token)
                check_binding(
                    cursor,
                    spec.continue_token,
                    now_s=to_us(now) // 1_000_000,
                    scope=scope,
                    filter_digest=digest(spec.filter),
                    window_digest=window_digest(start_text, end_text),
                    limit=limit,
                )
                window = cursor.window  # page 1's absolute window: relative times must not drift
            else:
                window = resolve_window(start_text, end_text, now, self._settings.max_window)
        except InvalidQuery as err:
            errors.extend(err.errors)
        if errors:
            raise InvalidQuery(errors)
        assert window is not None and limit is not None and sql_filter is not None  # no errors: all resolved

        limits = ReadLimits(deadline, self._settings.max_query_memory_bytes, self._settings.max_query_rows)
        try:
            page = await read_page(
                self._store,
                PageQuery(
                    start_us=window.start_us,
                    end_us=window.end_us,
                    limit=limit,
                    where=sql_filter.where,
                    params=sql_filter.params,
                    scope=scope,
                    after=cursor.after if cursor else None,
                ),
                sql_comment=sql_comment,
                limits=limits,
            )
        except StoreError as err:
            raise self._refused(err, spec, start_text) from None
        token = ""
        if page.next_after is not None:
            token = self._codec.encode(
                Cursor(
                    expires_s=int((now + self._settings.cursor_ttl).timestamp()),
                    scope=scope,
                    filter_digest=digest(spec.filter),
                    window_digest=window_digest(start_text, end_text),
                    limit=limit,
                    window=window,
                    after=page.next_after,
                )
            )
        return QueryResult(
            results_json=b"[" + b",".join(page.events) + b"]",
            continue_token=token,
            effective_start_time=window.start,
            effective_end_time=window.end,
            count=len(page.events),
        )

    def _refused(self, err: StoreError, spec: QuerySpec, start_text: str) -> Exception:
        """A limit the query crossed is the caller's to fix (422, not a retriable 503); anything else is the store's."""
        crossed = refusal(err)
        if crossed is Refusal.TIME:
            return QueryTimedOut(str(err))
        memory, rows = self._settings.max_query_memory_bytes, self._settings.max_query_rows
        if crossed is Refusal.MEMORY:
            need = f"more than the {memory / 2**20:,.0f} MiB of memory a query may use" if memory else "more memory"
        elif crossed is Refusal.ROWS:
            need = f"to read more than the {rows:,} rows a query may read" if rows else "to read more rows"
        else:
            return err
        # The cause names the filter when there is one (the usual culprit), else the window.
        field, value = ("spec.filter", spec.filter) if spec.filter.strip() else ("spec.startTime", start_text)
        if not (memory if crossed is Refusal.MEMORY else rows):
            need += " than the store allows a query"  # the store's own per-query limit
        return InvalidQuery([FieldError(field, "FieldValueInvalid", value, f"this query needs {need}: {_NARROW}")])

    @staticmethod
    def _filter(source: str, errors: list[FieldError]) -> SqlFilter | None:
        try:
            return _compiled(source)
        except InvalidQuery as err:
            errors.extend(err.errors)
            return None
