"""What creating an AuditLogQuery means: run the query in `spec` as the caller and answer with `status`.

The generic create handler (apiserver.machinery.create) has already decoded, validated and named the object;
here InvalidQuery becomes a 422, an unusable scope a 403, a stopped query a 504, a failing store a 503.
Nothing is stored, so there is no uid or resourceVersion.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from apiserver.apis.activity.v1alpha1.register import GROUP, KIND, RESOURCE
from apiserver.apis.activity.v1alpha1.types import QueryResult, QuerySpec
from apiserver.machinery.create import Created, CreateRequest
from apiserver.machinery.request import UserInfo
from apiserver.machinery.status import forbidden, invalid, service_unavailable
from apiserver.machinery.status import timeout as timeout_error
from apiserver.machinery.tracing import traceparent
from apiserver.registry.auditlogquery.errors import InvalidQuery
from apiserver.registry.auditlogquery.metrics import QueryMetrics
from apiserver.registry.auditlogquery.render import rendered
from apiserver.registry.auditlogquery.scope import ScopeUnresolved
from apiserver.registry.auditlogquery.service import QueryService, QueryTimedOut
from auditlog.storage import StoreError

log = logging.getLogger(__name__)

RETRY_AFTER_STORE_FAILURE_SECONDS = 5


def query_spec(spec: Mapping[str, Any]) -> QuerySpec:
    given = {
        "start_time": spec.get("startTime"),
        "end_time": spec.get("endTime"),
        "filter": spec.get("filter"),
        "limit": spec.get("limit"),
        "continue_token": spec.get("continue"),
    }
    return QuerySpec(**{k: v for k, v in given.items() if v is not None})


class AuditLogQueryStrategy:
    def __init__(self, service: QueryService, metrics: QueryMetrics) -> None:
        self.service = service
        self.metrics = metrics

    async def create(self, request: CreateRequest) -> Created:
        spec = request.head.get("spec") or {}
        head = request.head | {"spec": spec}
        name = head["metadata"].get("name", "")
        result = await self._execute(query_spec(spec), request.user, name, request.deadline)
        return rendered(head, result)

    async def _execute(self, spec: QuerySpec, user: UserInfo, name: str, deadline: float | None) -> QueryResult:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await self.service.execute(spec, user, sql_comment=traceparent(), deadline=deadline)
            outcome = "ok"
            self.metrics.results.observe(result.count)
            return result
        except InvalidQuery as err:
            outcome = "invalid"
            if any(e.field == "spec.filter" for e in err.errors):
                self.metrics.cel_rejected.inc()
            raise invalid(KIND, GROUP, name, err.errors) from None
        except ScopeUnresolved as err:
            outcome = "forbidden"
            raise forbidden(user.name, "create", RESOURCE.name, GROUP, str(err)) from None
        except QueryTimedOut:
            outcome = "timeout"
            raise timeout_error(round(time.perf_counter() - started, 1)) from None
        except StoreError as err:
            log.error("audit log store failed: %s", err)
            raise service_unavailable(
                "the audit log store is not answering; try again shortly", RETRY_AFTER_STORE_FAILURE_SECONDS
            ) from None
        finally:
            self.metrics.duration.labels(outcome).observe(time.perf_counter() - started)
