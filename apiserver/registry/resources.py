"""The resources the server serves and iterates: adding a resource is adding its package under apiserver.registry
(and its types under apiserver.apis) and its registration here; nothing generic changes."""

from __future__ import annotations

from apiserver.machinery.registration import Registration
from apiserver.registry.auditlogquery.rest import REGISTRATION as AUDIT_LOG_QUERY

RESOURCES: tuple[Registration, ...] = (AUDIT_LOG_QUERY,)
