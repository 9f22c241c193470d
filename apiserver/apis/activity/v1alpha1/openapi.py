"""The AuditLogQuery API type as OpenAPI schemas: the user documentation `kubectl explain` shows, and the shape
the create handler's strict field validation checks bodies against (one description of the type, two uses).

The audit event schema under `status.results` is generated from the field catalogue, so every filterable field
is documented with its CEL example.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from apiserver.apis.activity.v1alpha1.defaults import (
    DEFAULT_CURSOR_TTL,
    DEFAULT_END_TIME,
    DEFAULT_LIMIT,
    DEFAULT_START_TIME,
)
from apiserver.apis.activity.v1alpha1.filterdocs import FILTER_DESCRIPTION
from apiserver.apis.activity.v1alpha1.register import GROUP, KIND, VERSION
from auditlog.durations import format_timedelta
from auditlog.fields import FIELDS, FieldKind

_PREFIX = "com.miloapis.activity.v1alpha1."
AUDIT_LOG_QUERY = _PREFIX + "AuditLogQuery"
SPEC = _PREFIX + "AuditLogQuerySpec"
STATUS = _PREFIX + "AuditLogQueryStatus"
EVENT = "io.k8s.apiserver.pkg.apis.audit.v1.Event"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Ref = Callable[[str], str]  # schema name -> "$ref" target (v2 and v3 documents keep schemas in different places)

_STRING: dict[str, Any] = {"type": "string"}
_FREE_OBJECT: dict[str, Any] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}

_TIME_SYNTAX = (
    "RFC3339 with any UTC offset (2026-11-28T09:00:00Z, 2026-11-28T10:00:00.5+01:00), `now`, or a time relative "
    "to now: `now-<duration>` with a Go duration (now-30m, now-1h30m, now-90s), or in days and weeks (now-7d, now-2w)."
)

_EVENT_GROUPS = {
    "user": "Who made the request, as kube-apiserver authenticated them.",
    "objectRef": "The object the request was about (absent for non-resource requests such as /healthz).",
    "responseStatus": "The response status; for errors a metav1.Status with message and reason.",
}

_KIND_SCHEMAS: dict[FieldKind, dict[str, Any]] = {
    FieldKind.STRING: {"type": "string"},
    FieldKind.INT: {"type": "integer", "format": "int32"},
    FieldKind.TIMESTAMP: {"type": "string", "format": "date-time"},
    FieldKind.STRING_LIST: {"type": "array", "items": {"type": "string"}},
    FieldKind.STRING_MAP: {"type": "object", "additionalProperties": {"type": "string"}},
}


def _event_schema() -> dict[str, Any]:
    root: dict[str, Any] = {
        "description": "An audit.k8s.io/v1 Event exactly as kube-apiserver recorded it. Only the fields that "
        "spec.filter can use are described; the rest (requestObject, responseObject, impersonatedUser, ...) "
        "are returned as recorded.",
        "type": "object",
        "properties": {},
        "x-kubernetes-preserve-unknown-fields": True,
    }
    for f in FIELDS:
        node = root
        for part in f.parts[:-1]:
            node = node["properties"].setdefault(
                part,
                {"description": _EVENT_GROUPS.get(part, ""), "type": "object", "properties": {}}
                | {"x-kubernetes-preserve-unknown-fields": True},
            )
        node["properties"][f.parts[-1]] = _KIND_SCHEMAS[f.kind] | {
            "description": f"{f.description}\n\nIn spec.filter: `{f.example}`"
        }
    return root


def _object_meta() -> dict[str, Any]:
    not_stored = "Ignored: an AuditLogQuery is never stored."
    return {
        "description": "Standard object metadata. An AuditLogQuery is answered at once and never stored, so only "
        "name, generateName, labels and annotations mean anything; the name is optional.",
        "type": "object",
        "properties": {
            "name": _STRING | {"description": "Optional name of the query, echoed in the answer and in errors."},
            "generateName": _STRING
            | {"description": "Prefix for a generated name (up to 58 characters, then 5 random characters)."},
            "labels": {"type": "object", "additionalProperties": _STRING, "description": "Echoed back."},
            "annotations": {"type": "object", "additionalProperties": _STRING, "description": "Echoed back."},
            "creationTimestamp": _STRING
            | {"format": "date-time", "description": "When the server answered the query."},
            "namespace": _STRING | {"description": "Must be empty: AuditLogQuery is cluster-scoped."},
            "uid": _STRING | {"description": not_stored},
            "resourceVersion": _STRING | {"description": not_stored},
            "generation": {"type": "integer", "format": "int64", "description": not_stored},
            "selfLink": _STRING | {"description": not_stored},
            "deletionTimestamp": _STRING | {"format": "date-time", "description": not_stored},
            "deletionGracePeriodSeconds": {"type": "integer", "format": "int64", "description": not_stored},
            "finalizers": {"type": "array", "items": _STRING, "description": not_stored},
            "ownerReferences": {"type": "array", "items": _FREE_OBJECT, "description": not_stored},
            "managedFields": {"type": "array", "items": _FREE_OBJECT, "description": not_stored},
        },
    }


def schemas(ref: Ref, *, max_page_size: int, max_window: timedelta) -> dict[str, dict[str, Any]]:
    """Every schema the API documents, by definition name. The operator's limits are part of the docs."""
    window = format_timedelta(max_window, days=True)
    gvk = {"group": GROUP, "version": VERSION, "kind": KIND}
    return {
        AUDIT_LOG_QUERY: {
            "description": "AuditLogQuery searches the Kubernetes audit log. Create one with a spec (time window, "
            "CEL filter, page size) and the answer's status holds the matching audit events, newest first, "
            "plus a continue token for the next page. Nothing is stored: each create is one query.\n\n"
            "Example:\n  apiVersion: activity.miloapis.com/v1alpha1\n  kind: AuditLogQuery\n  spec:\n"
            "    startTime: now-7d\n    filter: \"verb == 'delete' && objectRef.resource == 'secrets'\"\n"
            "    limit: 50",
            "type": "object",
            "properties": {
                "apiVersion": _STRING
                | {"description": f"APIVersion of this object: {GROUP}/{VERSION} (may be omitted in requests)."},
                "kind": _STRING | {"description": f"Kind of this object: {KIND} (may be omitted in requests)."},
                "metadata": {"$ref": ref(OBJECT_META), "description": "Standard object metadata."},
                "spec": {"$ref": ref(SPEC), "description": "What to search: time window, filter and page size."},
                "status": {"$ref": ref(STATUS), "description": "The answer, filled in by the server."},
            },
            "x-kubernetes-group-version-kind": [gvk],
        },
        SPEC: {
            "description": "Selects the events whose stageTimestamp lies in [startTime, endTime) and that match "
            "filter, at most limit of them per page.",
            "type": "object",
            "properties": {
                "startTime": _STRING
                | {
                    "description": f"Start of the time window, inclusive. {_TIME_SYNTAX} "
                    f"Default: {DEFAULT_START_TIME}. The window may span at most {window}: split a longer "
                    "period into several queries."
                },
                "endTime": _STRING
                | {
                    "description": f"End of the time window, exclusive; must be after startTime. {_TIME_SYNTAX} "
                    f"Default: {DEFAULT_END_TIME}."
                },
                "filter": _STRING | {"description": FILTER_DESCRIPTION},
                "limit": {
                    "type": "integer",
                    "format": "int32",
                    "description": f"Most events to return in this page, 1 to {max_page_size}. "
                    f"Default: {DEFAULT_LIMIT}. More matching events are reached with spec.continue.",
                },
                "continue": _STRING
                | {
                    "description": "status.continue of the previous page, to fetch the next one. Send it with the "
                    "same startTime, endTime, filter and limit as the first page: the window of the first page "
                    "stays fixed, so relative times do not drift between pages. Tokens expire after "
                    f"{format_timedelta(DEFAULT_CURSOR_TTL, days=True)}."
                },
            },
        },
        STATUS: {
            "type": "object",
            "properties": {
                "results": {
                    "type": "array",
                    "items": {"$ref": ref(EVENT)},
                    "description": "Matching audit events (audit.k8s.io/v1 Event), newest first. An event "
                    "recorded more than once (at-least-once delivery) appears once.",
                },
                "continue": _STRING
                | {
                    "description": "Opaque token for the next page: set it as spec.continue. Empty when this is "
                    "the last page."
                },
                "effectiveStartTime": _STRING
                | {"format": "date-time", "description": "The absolute start of the window searched (UTC)."},
                "effectiveEndTime": _STRING
                | {"format": "date-time", "description": "The absolute end of the window searched (UTC)."},
            },
        },
        EVENT: _event_schema(),
        OBJECT_META: _object_meta(),
    }
