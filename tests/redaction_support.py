"""Audit events as kube-apiserver writes them for the requests that carry credentials, each with the credential
values it carries, so tests can look for them in whatever was published or stored.

Shapes follow kube-apiserver 1.32 at level RequestResponse: `kubectl create secret`, `kubectl apply` (client side:
the last-applied annotation; server side: an apply configuration), `kubectl patch` with each `--type`, list
responses (SecretList items carry no kind), a `List` of mixed kinds, TokenRequest and TokenReview.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from auditlog.redaction import is_marker

KEY = b"an-installation-key-for-the-tests"
STAMP = "2026-12-01T10:00:00.123456Z"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def audit_event(
    verb: str,
    resource: str,
    *,
    name: str | None = "db-creds",
    group: str = "",
    version: str = "v1",
    namespace: str | None = "shop",
    subresource: str | None = None,
    stage: str = "ResponseComplete",
    request: Any = None,
    response: Any = None,
    code: int = 200,
    audit_id: str | None = None,
    stamp: str = STAMP,
) -> dict[str, Any]:
    path = f"/apis/{group}/{version}" if group else f"/api/{version}"
    ref: dict[str, Any] = {"resource": resource}
    if namespace:
        ref["namespace"] = namespace
        path += f"/namespaces/{namespace}"
    path += f"/{resource}"
    if name:
        ref["name"] = name
        path += f"/{name}"
    if subresource:
        ref["subresource"] = subresource
        path += f"/{subresource}"
    ref["apiVersion"] = version
    if group:
        ref["apiGroup"] = group
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit_id or str(uuid.uuid4()),
        "stage": stage,
        "requestURI": path + ("?fieldManager=kubectl-client-side-apply" if verb == "patch" else ""),
        "verb": verb,
        "user": {"username": "alice@example.com", "groups": ["oidc:developers", "system:authenticated"]},
        "sourceIPs": ["10.1.2.3"],
        "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
        "objectRef": ref,
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
    }
    if stage == "ResponseComplete":
        event["responseStatus"] = {"metadata": {}, "code": code}
        event["annotations"] = {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
    if request is not None:
        event["requestObject"] = request
    if response is not None and stage == "ResponseComplete":
        event["responseObject"] = response
    return event


def secret(
    data: dict[str, str] | None = None,
    *,
    name: str = "db-creds",
    version: int = 1,
    string_data: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    type_meta: bool = True,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Secret as kube-apiserver returns it (`data` given in plain text, stored base64 as the API does)."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
        "resourceVersion": str(1000 + version),
        "creationTimestamp": "2026-12-01T09:00:00Z",
        "managedFields": [
            {
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "2026-12-01T09:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}, **{f"f:{k}": {} for k in data or {}}}, "f:type": {}},
            }
        ],
    }
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    obj: dict[str, Any] = {"kind": "Secret", "apiVersion": "v1"} if type_meta else {}
    obj["metadata"] = metadata
    if data is not None:
        obj["data"] = {k: b64(v) for k, v in data.items()}
    if string_data is not None:
        obj["stringData"] = string_data
    obj["type"] = "Opaque"
    return obj


def forms(values: list[str]) -> list[str]:
    """Each credential as it may appear: as given and base64 (Secret data holds the latter)."""
    return [form for v in values for form in (v, b64(v))]


@dataclass(frozen=True)
class Case:
    name: str
    event: dict[str, Any]
    credentials: list[str]  # every value that must not survive, in each form it is sent in
    resource: str  # the metrics label of the rule expected to redact it
    keys: list[str] = field(default_factory=list)  # Secret keys that must survive as keys


def cases() -> Iterator[Case]:
    """One event per way kube-apiserver writes a credential into an audit event."""
    pw, token = "hunter2-Pa55word", "ghp_1234567890abcdefghijklmnopqrstuvwxyz"
    creds = {"password": pw, "api-token": token}
    both = forms([pw, token])
    yield Case("create", audit_event("create", "secrets", request=secret(creds), response=secret(creds)), both,
               "core/secrets", ["password", "api-token"])  # fmt: skip
    yield Case(
        "create at RequestReceived (level Request)",
        audit_event("create", "secrets", stage="RequestReceived", request=secret(creds)) | {"level": "Request"},
        both,
        "core/secrets",
        ["password"],
    )
    yield Case(
        "create with stringData",
        audit_event("create", "secrets", request=secret(string_data=creds), response=secret(creds)),
        both,
        "core/secrets",
        ["password"],
    )
    applied = json.dumps(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-creds", "namespace": "shop"},
         "stringData": creds, "type": "Opaque"}
    )  # fmt: skip
    last = {"kubectl.kubernetes.io/last-applied-configuration": applied + "\n"}
    yield Case(
        "kubectl apply (client side): the last-applied annotation",
        audit_event(
            "create",
            "secrets",
            request=secret(creds, annotations=last),
            response=secret(creds, annotations=last),
        ),
        both,
        "core/secrets",
        ["password"],
    )
    yield Case(
        "update",
        audit_event("update", "secrets", request=secret(creds, version=2), response=secret(creds, version=2)),
        both,
        "core/secrets",
        ["password"],
    )
    json_patch = [
        {"op": "test", "path": "/data/password", "value": b64("old-" + pw)},
        {"op": "replace", "path": "/data/password", "value": b64(pw)},
        {"op": "add", "path": "/data/api-token", "value": b64(token)},
        {"op": "add", "path": "/stringData", "value": {"note": "n0te-" + pw}},
        {"op": "remove", "path": "/data/old"},
        {"op": "add", "path": "/metadata/labels/tier", "value": "db"},
    ]
    yield Case(
        "patch --type=json",
        audit_event("patch", "secrets", request=json_patch, response=secret(creds, version=3)),
        [*both, *forms(["old-" + pw, "n0te-" + pw])],
        "core/secrets",
        ["password"],
    )
    yield Case(
        "patch --type=json replacing the whole object",
        audit_event("patch", "secrets", request=[{"op": "replace", "path": "", "value": secret(creds)}]),
        both,
        "core/secrets",
        ["password"],
    )
    yield Case(
        "patch --type=merge",
        audit_event(
            "patch",
            "secrets",
            request={"data": {"password": b64(pw), "old": None}, "stringData": {"api-token": token}},
            response=secret(creds, version=3),
        ),
        both,
        "core/secrets",
        ["password"],
    )
    yield Case(
        "patch (strategic merge, kubectl's default)",
        audit_event(
            "patch",
            "secrets",
            request={"$setElementOrder/data": ["password"], "stringData": creds, "metadata": {"labels": {"a": "b"}}},
            response=secret(creds, version=3),
        ),
        both,
        "core/secrets",
        ["password"],
    )
    yield Case(
        "server-side apply (an apply configuration)",
        audit_event(
            "patch",
            "secrets",
            request={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db-creds"}, "stringData": creds},
            response=secret(creds, version=3),
        ),
        both,
        "core/secrets",
        ["password"],
    )
    yield Case("get", audit_event("get", "secrets", response=secret(creds)), both, "core/secrets", ["password"])
    listed = {
        "kind": "SecretList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "2001"},
        "items": [secret(creds, type_meta=False), secret({"tls.key": "-----BEGIN KEY-----x"}, type_meta=False)],
    }
    yield Case(
        "list",
        audit_event("list", "secrets", name=None, response=listed),
        [*both, *forms(["-----BEGIN KEY-----x"])],
        "core/secrets",
        ["password", "tls.key"],
    )
    mixed = {
        "kind": "List",
        "apiVersion": "v1",
        "metadata": {},
        "items": [
            {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "settings"}, "data": {"mode": "fast"}},
            secret(creds),
        ],
    }
    yield Case(
        "a List of mixed kinds holding a Secret",
        audit_event("create", "bundles", group="example.com", name="b1", request=mixed, response=mixed),
        both,
        "core/secrets",
        ["password"],
    )
    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2hvcDpkZWZhdWx0In0.c2ln"
    token_request = {
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": "default", "namespace": "shop", "creationTimestamp": None},
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600, "boundObjectRef": None},
        "status": {"token": "", "expirationTimestamp": None},
    }
    answered = token_request | {"status": {"token": jwt, "expirationTimestamp": "2026-12-01T11:00:00Z"}}
    yield Case(
        "TokenRequest",
        audit_event(
            "create", "serviceaccounts", name="default", subresource="token", request=token_request, response=answered
        ),
        [jwt],
        "core/serviceaccounts/token",
    )
    review = {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {"token": jwt + "-reviewed", "audiences": ["activity"]},
        "status": {"user": {}},
    }
    reviewed = review | {
        "status": {"authenticated": True, "user": {"username": "system:serviceaccount:shop:default", "groups": []}}
    }
    yield Case(
        "TokenReview",
        audit_event(
            "create",
            "tokenreviews",
            group="authentication.k8s.io",
            name=None,
            namespace=None,
            request=review,
            response=reviewed,
        ),
        [jwt + "-reviewed"],
        "authentication.k8s.io/tokenreviews",
    )


def markers_at(document: Any) -> list[str]:
    """Every marker under `document`."""
    found, stack = [], [document]
    while stack:
        node = stack.pop()
        if is_marker(node):
            found.append(node)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def strings_in(document: Any) -> Iterator[str]:
    """Every string under `document`, keys included."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            yield from node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def leaks(data: bytes, credentials: list[str]) -> list[str]:
    """The credentials found in `data`: as bytes, as a JSON string's inner bytes, or inside any parsed string
    (which also sees through \\u escapes)."""
    found = [c for c in credentials if c.encode() in data or json.dumps(c)[1:-1].encode() in data]
    try:
        strings = list(strings_in(json.loads(data)))
    except ValueError:
        return found
    return found + [c for c in credentials if any(c in s for s in strings) and c not in found]


def event_key(event: dict[str, Any]) -> tuple[str, str]:
    """Which request and stage an event is: how these tests pair what was sent with what was published."""
    return event["auditID"], event["stage"]
