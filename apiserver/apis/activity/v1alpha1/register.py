"""The group, version and kinds of activity.miloapis.com/v1alpha1, as discovery lists them."""

from __future__ import annotations

from apiserver.machinery.discovery import ApiResource, GroupVersion

GROUP = "activity.miloapis.com"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AuditLogQuery"
RESOURCE = ApiResource(name="auditlogqueries", singular_name="auditlogquery", kind=KIND, verbs=("create",))
GROUP_VERSION = GroupVersion(GROUP, VERSION, (RESOURCE,))
