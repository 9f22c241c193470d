"""AuditLogQuery's registration: a create-only collection whose strategy runs the query."""

from __future__ import annotations

from functools import partial

from apiserver.apis.activity.v1alpha1 import openapi
from apiserver.apis.activity.v1alpha1.register import GROUP, GROUP_VERSION, RESOURCE, VERSION
from apiserver.machinery.create import CreateHandler
from apiserver.machinery.openapi import CreateOnlyApi
from apiserver.machinery.registration import InstallContext, Installed, Registration
from apiserver.registry.auditlogquery.metrics import QueryMetrics
from apiserver.registry.auditlogquery.service import QueryService
from apiserver.registry.auditlogquery.settings import QuerySettings
from apiserver.registry.auditlogquery.strategy import AuditLogQueryStrategy


def install(context: InstallContext) -> Installed:
    settings = context.settings_of(QuerySettings)
    schemas = partial(openapi.schemas, max_page_size=settings.max_page_size, max_window=settings.max_window)
    strategy = AuditLogQueryStrategy(QueryService(context.store, settings), QueryMetrics(context.metrics.registry))
    handler = CreateHandler(GROUP_VERSION, RESOURCE, openapi.AUDIT_LOG_QUERY, schemas(lambda name: name), strategy)
    api = CreateOnlyApi(
        gv=GROUP_VERSION,
        resource=RESOURCE,
        root_schema=openapi.AUDIT_LOG_QUERY,
        schemas_for=schemas,
        title="Activity: Kubernetes audit log queries",
    )
    return Installed(api, handler.add_routes)


REGISTRATION = Registration(GROUP, VERSION, RESOURCE, install)
