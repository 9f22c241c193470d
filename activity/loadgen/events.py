"""Realistic audit events, shaped like kube-apiserver's, deterministic for a seed.

Each request yields a RequestReceived and a ResponseComplete event with the same auditID, as kube-apiserver
sends them. Users mix people, service accounts and `system:` components; objects spread over namespaces,
resources and tenants (scope annotations); writes at RequestResponse level carry request/response objects
whose spec changes from one write to the next, so `history --diff` has something to show. Sizes follow real
clusters (Metadata events ~1 KB, RequestResponse ones a few KB with managedFields), because ingest speed
depends on them.

`malformed()` breaks an event in one of the ways the ingest path must survive (see auditlog.events.problem).
"""

from __future__ import annotations

import functools
import random
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION

PEOPLE = tuple(f"{n}@example.com" for n in ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"))
SERVICE_ACCOUNTS = tuple(
    f"system:serviceaccount:{ns}:{sa}"
    for ns, sa in (
        ("kube-system", "replicaset-controller"),
        ("kube-system", "deployment-controller"),
        ("argocd", "argocd-application-controller"),
        ("monitoring", "prometheus"),
        ("flux-system", "kustomize-controller"),
    )
)
SYSTEM_USERS = (
    "system:kube-scheduler",
    "system:kube-controller-manager",
    "system:apiserver",
    "system:node:node-1",
)
NAMESPACES = ("default", "kube-system", "prod", "staging", "team-a", "team-b", "monitoring", "argocd")
# (apiGroup, version, resource, namespaced)
RESOURCES = (
    ("", "v1", "pods", True),
    ("", "v1", "configmaps", True),
    ("", "v1", "secrets", True),
    ("", "v1", "services", True),
    ("apps", "v1", "deployments", True),
    ("apps", "v1", "statefulsets", True),
    ("batch", "v1", "jobs", True),
    ("", "v1", "namespaces", False),
    ("", "v1", "nodes", False),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
)
READ_VERBS = ("get", "list", "watch")
WRITE_VERBS = ("create", "update", "patch", "delete")
TENANTS = (
    ("Organization", "acme"),
    ("Organization", "globex"),
    ("Project", "acme-web"),
    ("Project", "globex-data"),
    ("User", "alice"),
)
USER_AGENTS = (
    "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
    "argocd-application-controller/v2.13",
    "kube-controller-manager/v1.32.4 (linux/amd64) kubernetes/59526cd/system:serviceaccount:kube-system:generic",
    "Go-http-client/2.0",
    "prometheus/3.1",
)
FAILURES = {
    403: ("Forbidden", "{user} cannot {verb} resource {resource} in API group {group} in the namespace {ns}"),
    404: ("NotFound", "{resource} {name} not found"),
    409: ("Conflict", "Operation cannot be fulfilled on {resource} {name}: the object has been modified"),
    422: ("Invalid", "{resource} {name} is invalid: spec.replicas: Invalid value: -1: must be >= 0"),
    500: ("InternalError", "Internal error occurred: etcdserver: request timed out"),
}

# The ways an item can be unstorable; each one is a reason auditlog.events.problem() gives.
MALFORMED_KINDS = (
    "not an object",
    "auditID missing",
    "unknown stage",
    "stageTimestamp not RFC3339",
    "stageTimestamp year out of range",
    "user not an object",
    "verb not a string",
)


@dataclass(frozen=True)
class GeneratorSettings:
    seed: int = 1
    start: datetime = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    step: timedelta = timedelta(milliseconds=10)  # time between consecutive requests
    objects: int = 200  # distinct objects, so histories have several versions


def _stamp(t: datetime) -> str:
    """kube-apiserver's form, `2026-11-28T09:00:00.010000Z` (isoformat: several times faster than strftime)."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@functools.cache
def _name_uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class EventGenerator:
    """Yields request pairs (RequestReceived, ResponseComplete) in time order."""

    def __init__(self, settings: GeneratorSettings = GeneratorSettings()) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.now = settings.start
        self.generation: dict[int, int] = {}

    def _user(self) -> dict[str, Any]:
        roll = self.rng.random()
        if roll < 0.45:
            username = self.rng.choice(PEOPLE)
            groups = ["oidc:developers", "system:authenticated"]
            extra: dict[str, list[str]] = {}
        elif roll < 0.85:
            username = self.rng.choice(SERVICE_ACCOUNTS)
            ns, sa = username.split(":")[2:]
            groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
            pod = f"{sa}-{zlib.crc32(username.encode()) % 100_000:05d}"
            extra = {
                "authentication.kubernetes.io/credential-id": [f"JTI={_uuid(self.rng)}"],
                "authentication.kubernetes.io/node-name": [f"node-{self.rng.randrange(1, 4)}"],
                "authentication.kubernetes.io/pod-name": [pod],
                "authentication.kubernetes.io/pod-uid": [_name_uid(pod)],
            }
        else:
            username = self.rng.choice(SYSTEM_USERS)
            groups = ["system:masters", "system:authenticated"]
            extra = {}
        user: dict[str, Any] = {
            "username": username,
            "uid": f"uid-{zlib.crc32(username.encode()) % 10_000}",
            "groups": groups,
        }
        if extra:
            user["extra"] = extra
        return user

    def _object(self, index: int, resource: str, group: str, version: str, namespace: str) -> dict[str, Any]:
        gen = self.generation.get(index, 0)
        kind = resource[:-1].capitalize() if resource.endswith("s") else resource
        name = f"obj-{index}"
        api_version = f"{group}/{version}" if group else version
        stamp = _stamp(self.settings.start + timedelta(seconds=gen))
        metadata: dict[str, Any] = {
            "name": name,
            "uid": _name_uid(f"{resource}/{namespace}/{name}"),
            "resourceVersion": str(1000 + gen),
            "generation": gen + 1,
            "creationTimestamp": _stamp(self.settings.start),
            "labels": {"app": f"app-{index % 7}", "app.kubernetes.io/managed-by": "argocd"},
            "annotations": {"deployment.kubernetes.io/revision": str(gen + 1)},
            # managedFields is what makes real RequestResponse events several KB.
            "managedFields": [
                {
                    "manager": manager,
                    "operation": operation,
                    "apiVersion": api_version,
                    "time": stamp,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}, "f:annotations": {".": {}}},
                        "f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {}}}},
                    },
                }
                for manager, operation in (
                    ("kubectl-client-side-apply", "Update"),
                    ("kube-controller-manager", "Update"),
                )
            ],
        }
        if namespace:
            metadata["namespace"] = namespace
        return {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": metadata,
            "spec": {
                "replicas": 1 + gen % 5,
                "image": f"registry.example.com/app:{gen}",
                "paused": gen % 3 == 0,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": f"registry.example.com/app:{gen}",
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                            }
                        ]
                    }
                },
            },
            "status": {"observedGeneration": gen, "replicas": 1 + gen % 5, "conditions": [{"type": "Available"}]},
        }

    def request(self) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        self.now += self.settings.step
        received = self.now
        completed = received + timedelta(microseconds=rng.randint(500, 80_000))
        user = self._user()
        group, version, resource, namespaced = rng.choice(RESOURCES)
        index = rng.randrange(self.settings.objects)
        namespace = NAMESPACES[index % len(NAMESPACES)] if namespaced else ""
        write = rng.random() < 0.3
        verb = rng.choice(WRITE_VERBS) if write else rng.choice(READ_VERBS)
        code = rng.choices((200, 201, 403, 404, 409, 422, 500), weights=(80, 6, 5, 4, 2, 2, 1))[0]
        if verb == "create" and code == 200:
            code = 201
        scope_type, scope_name = TENANTS[index % len(TENANTS)]
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if namespace:
            path += f"/namespaces/{namespace}"
        name = f"obj-{index}" if verb not in ("list", "watch", "create") else ""
        path += f"/{resource}" + (f"/{name}" if name else "")
        if verb in ("list", "watch"):
            path += "?resourceVersion=0&limit=500" if verb == "list" else "?allowWatchBookmarks=true&watch=true"
        object_ref: dict[str, Any] = {"resource": resource, "apiVersion": version}
        if group:
            object_ref["apiGroup"] = group
        if namespace:
            object_ref["namespace"] = namespace
        if verb not in ("list", "watch"):
            object_ref["name"] = f"obj-{index}"
        level = "RequestResponse" if write and resource != "secrets" else "Metadata"
        decision = "forbid" if code == 403 else "allow"
        base: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": _uuid(rng),
            "requestURI": path,
            "verb": verb,
            "user": user,
            "sourceIPs": [f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"],
            "userAgent": rng.choice(USER_AGENTS),
            "objectRef": object_ref,
            "requestReceivedTimestamp": _stamp(received),
            "annotations": {
                "authorization.k8s.io/decision": decision,
                "authorization.k8s.io/reason": ""
                if decision == "forbid"
                else f'RBAC: allowed by ClusterRoleBinding "{resource}-editors" of ClusterRole "edit" to Group '
                f'"{user["groups"][0]}"',
                SCOPE_TYPE_ANNOTATION: scope_type,
                SCOPE_NAME_ANNOTATION: scope_name,
            },
        }
        first = dict(base, stage="RequestReceived", stageTimestamp=_stamp(received))
        first.pop("annotations")
        status: dict[str, Any] = {"metadata": {}, "code": code}
        if code in FAILURES:
            reason, message = FAILURES[code]
            status.update(
                status="Failure",
                reason=reason,
                message=message.format(
                    user=user["username"], verb=verb, resource=resource, group=group, ns=namespace, name=name
                ),
                details={"name": name, "kind": resource},
            )
        done = dict(base, stage="ResponseComplete", stageTimestamp=_stamp(completed), responseStatus=status)
        if level == "RequestResponse" and code < 400:
            if verb != "delete":
                self.generation[index] = self.generation.get(index, 0) + 1
            obj = self._object(index, resource, group, version, namespace)
            done["requestObject"] = obj
            done["responseObject"] = obj
            first["requestObject"] = obj
        return first, done

    def events(self, requests: int) -> Iterator[dict[str, Any]]:
        """2 x `requests` events: each request's RequestReceived then its ResponseComplete."""
        for _ in range(requests):
            yield from self.request()


def malformed(event: dict[str, Any], kind: str, serial: int) -> Any:
    """`event` broken the way `kind` (one of MALFORMED_KINDS) says. Each carries its `serial` (in its auditID,
    or its requestURI when the auditID is what is missing), so no two are alike and none can be mistaken for (or
    deduplicated against) the valid event it was made from."""
    broken = dict(event, auditID=f"malformed-{serial}")
    if kind == "not an object":
        return f"not an event #{serial}"
    if kind == "auditID missing":
        broken.pop("auditID")
        broken["requestURI"] = f"{event.get('requestURI', '')}#malformed-{serial}"
    elif kind == "unknown stage":
        broken["stage"] = "Finished"
    elif kind == "stageTimestamp not RFC3339":
        broken["stageTimestamp"] = "yesterday at noon"
    elif kind == "stageTimestamp year out of range":
        broken["stageTimestamp"] = "0001-01-01T00:00:00Z"
    elif kind == "user not an object":
        broken["user"] = "alice@example.com"
    elif kind == "verb not a string":
        broken["verb"] = ["get"]
    else:
        raise ValueError(f"unknown malformed kind {kind!r}: use one of {', '.join(MALFORMED_KINDS)}")
    return broken
