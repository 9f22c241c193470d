"""The audit-event field catalogue: the one place that says which fields of an audit.k8s.io/v1 Event can be
filtered on, what they are called in CEL, which ClickHouse column holds them, how to document them, and which
ones the CLI shows. The CEL environment, the SQL translator, the OpenAPI docs and the kubectl plugin's tables
all read this list; the migrations are checked against it by the tests.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FieldKind(enum.Enum):
    STRING = "string"
    INT = "int"
    TIMESTAMP = "timestamp"
    STRING_LIST = "list(string)"
    STRING_MAP = "map(string, string)"


class Display(enum.Enum):
    """Where the kubectl plugin shows a field: in the default table, only with -o wide, or not at all."""

    TABLE = "table"
    WIDE = "wide"
    HIDDEN = "hidden"


@dataclass(frozen=True)
class Field:
    path: str  # dotted path in the Event JSON, which is also the CEL name
    column: str  # ClickHouse column derived from event_json at insert time
    kind: FieldKind
    ch_type: str  # the column's ClickHouse type, as DESCRIBE TABLE prints it
    description: str
    example: str  # a CEL filter using the field, for the docs
    display: Display = Display.HIDDEN
    header: str = ""  # column title in the plugin's tables
    # Lists and maps: how many items the filter cost estimate assumes (Kubernetes' maxItems / maxProperties).
    # Not a limit on stored events; set above what real events carry, so that nesting comprehensions over the
    # field is refused while one comprehension over it always passes (apiserver/auditlogquery/filter/cost.py).
    assumed_size: int = 0

    @property
    def parts(self) -> tuple[str, ...]:
        return tuple(self.path.split("."))


FIELDS: tuple[Field, ...] = (
    Field(
        "auditID",
        "audit_id",
        FieldKind.STRING,
        "String",
        "Unique ID kube-apiserver gave the request; the same for every stage of it.",
        "auditID == '6e0c6a3f-8a5d-4b1e-9a53-2f0b6f3c2d11'",
        Display.WIDE,
        "AUDIT ID",
    ),
    Field(
        "stage",
        "stage",
        FieldKind.STRING,
        "LowCardinality(String)",
        "Request stage the event was recorded at: RequestReceived, ResponseStarted, ResponseComplete or Panic.",
        "stage == 'ResponseComplete'",
    ),
    Field(
        "stageTimestamp",
        "timestamp",
        FieldKind.TIMESTAMP,
        "DateTime64(6, 'UTC')",
        "When the stage was reached (microseconds). Compare with timestamp('RFC3339') and duration('1h').",
        "stageTimestamp > timestamp('2026-01-01T00:00:00Z')",
        Display.TABLE,
        "TIMESTAMP",
    ),
    Field(
        "level",
        "level",
        FieldKind.STRING,
        "LowCardinality(String)",
        "Audit level the policy recorded: Metadata, Request or RequestResponse.",
        "level == 'RequestResponse'",
    ),
    Field(
        "verb",
        "verb",
        FieldKind.STRING,
        "LowCardinality(String)",
        "Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection...",
        "verb in ['create', 'update', 'patch', 'delete']",
        Display.TABLE,
        "VERB",
    ),
    Field(
        "requestURI",
        "request_uri",
        FieldKind.STRING,
        "String",
        "Request path and query as the client sent it.",
        "requestURI.startsWith('/api/v1/namespaces/prod/secrets')",
    ),
    Field(
        "user.username",
        "user",
        FieldKind.STRING,
        "String",
        "Who made the request, as authenticated (service accounts look like system:serviceaccount:NS:NAME).",
        "user.username == 'alice@example.com'",
        Display.TABLE,
        "USER",
    ),
    Field(
        "user.uid",
        "user_uid",
        FieldKind.STRING,
        "String",
        "The authenticated user's UID, when the authenticator provides one.",
        "user.uid == '42'",
    ),
    Field(
        "user.groups",
        "user_groups",
        FieldKind.STRING_LIST,
        "Array(String)",
        "Groups of the authenticated user.",
        "user.groups.exists(g, g == 'system:masters')",
        Display.WIDE,
        "GROUPS",
        assumed_size=200,
    ),
    Field(
        "sourceIPs",
        "source_ips",
        FieldKind.STRING_LIST,
        "Array(String)",
        "Client IP and the proxies it came through, nearest last.",
        "sourceIPs.exists(ip, ip.startsWith('10.'))",
        Display.WIDE,
        "SOURCE IP",
        assumed_size=16,
    ),
    Field(
        "userAgent",
        "user_agent",
        FieldKind.STRING,
        "String",
        "User-Agent header of the request.",
        "userAgent.contains('kubectl')",
        Display.WIDE,
        "USER AGENT",
    ),
    Field(
        "objectRef.apiGroup",
        "api_group",
        FieldKind.STRING,
        "LowCardinality(String)",
        "API group of the object ('' for the core group).",
        "objectRef.apiGroup == 'apps'",
    ),
    Field(
        "objectRef.apiVersion",
        "api_version",
        FieldKind.STRING,
        "LowCardinality(String)",
        "API version of the object.",
        "objectRef.apiVersion == 'v1'",
    ),
    Field(
        "objectRef.namespace",
        "namespace",
        FieldKind.STRING,
        "String",
        "Namespace of the object ('' for cluster-scoped objects).",
        "objectRef.namespace == 'kube-system'",
        Display.TABLE,
        "NAMESPACE",
    ),
    Field(
        "objectRef.resource",
        "resource",
        FieldKind.STRING,
        "LowCardinality(String)",
        "Resource, plural and lower case: pods, deployments, secrets...",
        "objectRef.resource == 'secrets'",
        Display.TABLE,
        "RESOURCE",
    ),
    Field(
        "objectRef.subresource",
        "subresource",
        FieldKind.STRING,
        "LowCardinality(String)",
        "Subresource, e.g. status, scale, exec, log.",
        "objectRef.subresource == 'exec'",
    ),
    Field(
        "objectRef.name",
        "name",
        FieldKind.STRING,
        "String",
        "Name of the object.",
        "objectRef.name.startsWith('web-')",
        Display.TABLE,
        "NAME",
    ),
    Field(
        "responseStatus.code",
        "status_code",
        FieldKind.INT,
        "Int32",
        "HTTP status code of the response (0 when the stage has none).",
        "responseStatus.code >= 400",
        Display.TABLE,
        "STATUS",
    ),
    Field(
        "annotations",
        "annotations",
        FieldKind.STRING_MAP,
        "Map(String, String)",
        "Annotations added by kube-apiserver and admission, e.g. authorization.k8s.io/decision.",
        "annotations['authorization.k8s.io/decision'] == 'forbid'",
        assumed_size=1000,
    ),
)

BY_PATH: dict[str, Field] = {f.path: f for f in FIELDS}

# Tenancy: kube-apiserver's admission stamps each event with the tenant it belongs to.
SCOPE_TYPE_ANNOTATION = "platform.miloapis.com/scope.type"
SCOPE_NAME_ANNOTATION = "platform.miloapis.com/scope.name"
SCOPE_TYPE_COLUMN = "scope_type"
SCOPE_NAME_COLUMN = "scope_name"

STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")


def table_fields(wide: bool = False) -> tuple[Field, ...]:
    """Fields the plugin shows: the table's in catalogue order, then (like kubectl's -o wide) the wide-only ones."""
    table = tuple(f for f in FIELDS if f.display is Display.TABLE)
    return table + tuple(f for f in FIELDS if f.display is Display.WIDE) if wide else table
