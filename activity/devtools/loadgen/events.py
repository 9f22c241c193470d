"""Realistic audit events, shaped like kube-apiserver's, deterministic for a seed.

Each request yields a RequestReceived and a ResponseComplete event with one auditID. The generator keeps the
cluster's state (objects exist or not, with uid, resourceVersion and generation), so each request is answered as
kube-apiserver would answer it and `history --diff` tells a believable story; users, namespaces, resources,
tenants and event sizes mix as in real clusters, because ingest speed depends on them.

`malformed()` breaks an event in one of the ways the ingest path must survive (see auditlog.events.problem).
"""

from __future__ import annotations

import functools
import random
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
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
# The kind of each resource's objects, as its API serves it.
KINDS = {
    "pods": "Pod",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "services": "Service",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "jobs": "Job",
    "namespaces": "Namespace",
    "nodes": "Node",
    "clusterroles": "ClusterRole",
}
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
# reason -> (code, message) of kube-apiserver's failure Statuses.
FAILURES = {
    "Forbidden": (403, '{user} cannot {verb} resource "{resource}" in API group "{group}" in the namespace "{ns}"'),
    "NotFound": (404, '{resource} "{name}" not found'),
    "AlreadyExists": (409, '{resource} "{name}" already exists'),
    "Conflict": (409, 'Operation cannot be fulfilled on {resource} "{name}": the object has been modified'),
    "Invalid": (422, '{kind} "{name}" is invalid: spec.replicas: Invalid value: -1: must be >= 0'),
    "InternalError": (500, "Internal error occurred: etcdserver: request timed out"),
}
FIRST_REVISION = 100_000  # the cluster-wide resourceVersion when the traffic starts
ABSENT_AT_START = 10  # one object in this many does not exist yet when the traffic starts

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


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One object as the cluster holds it; a write replaces it with its next version."""

    uid: str
    created: str  # creationTimestamp
    resource_version: int
    generation: int  # bumped by spec changes only, as kube-apiserver does
    spec_version: int  # drives the spec's content
    label_version: int  # drives a label that metadata-only patches change


@dataclass(frozen=True)
class _Target:
    group: str
    version: str
    resource: str
    namespace: str
    name: str
    index: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.resource, self.namespace, self.name)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


class EventGenerator:
    """Yields request pairs (RequestReceived, ResponseComplete) in time order, answered as the cluster's state says."""

    def __init__(self, settings: GeneratorSettings = GeneratorSettings()) -> None:
        self.settings = settings
        self.origin = settings.start  # objects that exist when the traffic starts were created before it
        self.rng = random.Random(settings.seed)
        self.now = settings.start
        self.revision = FIRST_REVISION
        self.objects: dict[tuple[str, str, str], StoredObject | None] = {}  # None: deleted (or never created)

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

    def stored(self, target: _Target) -> StoredObject | None:
        """The object now, if it exists; first touched, it is there since before the traffic (most are)."""
        key = target.key
        if key in self.objects:
            return self.objects[key]
        seen = zlib.crc32("/".join(key).encode())
        present = StoredObject(
            uid=_name_uid("/".join(key)),
            created=_stamp(self.origin - timedelta(days=1 + seen % 60)),
            resource_version=FIRST_REVISION - 1 - seen % (FIRST_REVISION // 2),
            generation=1,
            spec_version=0,
            label_version=0,
        )
        state = None if seen % ABSENT_AT_START == 0 else present
        self.objects[key] = state
        return state

    def _verb(self, write: bool, exists: bool) -> str:
        rng = self.rng
        if not write:
            return rng.choice(READ_VERBS)
        if not exists:  # mostly creates; the rest are writes to an object that is gone (404)
            return "create" if rng.random() < 0.85 else rng.choice(("update", "patch", "delete"))
        return rng.choices(WRITE_VERBS, weights=(1, 42, 46, 11))[0]  # a create of an existing object: 409

    def _failure(self, verb: str, exists: bool) -> str | None:
        """The reason a request fails (a FAILURES key), or None when it succeeds."""
        roll = self.rng.random()
        if roll < 0.04:
            return "Forbidden"
        if roll < 0.05:
            return "InternalError"
        if verb in ("list", "watch"):
            return None
        if verb == "create":
            return "AlreadyExists" if exists else ("Invalid" if roll < 0.07 else None)
        if not exists:
            return "NotFound"
        if verb == "update" and roll < 0.08:
            return "Conflict"  # the client's resourceVersion was stale
        if (verb == "update" and roll < 0.10) or (verb == "patch" and roll < 0.07):
            return "Invalid"
        return None

    def _write(self, verb: str, target: _Target, before: StoredObject | None) -> StoredObject | None:
        """The object after a successful write (None after a delete); the cluster's revision moves on."""
        self.revision += 1
        if verb == "delete":
            self.objects[target.key] = None
            return None
        if verb == "create" or before is None:
            after = StoredObject(_uuid(self.rng), _stamp(self.now), self.revision, 1, 0, 0)
        elif verb == "patch" and self.rng.random() < 0.3:  # a label patch: metadata only, same generation
            after = replace(before, resource_version=self.revision, label_version=before.label_version + 1)
        else:
            after = replace(
                before,
                resource_version=self.revision,
                generation=before.generation + 1,
                spec_version=before.spec_version + 1,
            )
        self.objects[target.key] = after
        return after

    def _object(self, target: _Target, state: StoredObject) -> dict[str, Any]:
        version = state.spec_version
        api_version = target.api_version
        stamp = _stamp(self.now)
        metadata: dict[str, Any] = {
            "name": target.name,
            "uid": state.uid,
            "resourceVersion": str(state.resource_version),
            "generation": state.generation,
            "creationTimestamp": state.created,
            "labels": {
                "app": f"app-{target.index % 7}",
                "app.kubernetes.io/managed-by": "argocd",
                "tier": ("web", "api", "batch")[state.label_version % 3],
            },
            "annotations": {"deployment.kubernetes.io/revision": str(version + 1)},
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
        if target.namespace:
            metadata["namespace"] = target.namespace
        return {
            "kind": KINDS[target.resource],
            "apiVersion": api_version,
            "metadata": metadata,
            "spec": {
                "replicas": 1 + version % 5,
                "image": f"registry.example.com/app:{version}",
                "paused": version % 3 == 0,
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": f"registry.example.com/app:{version}",
                                "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
                            }
                        ]
                    }
                },
            },
            "status": {
                "observedGeneration": state.generation,
                "replicas": 1 + version % 5,
                "conditions": [{"type": "Available"}],
            },
        }

    def _bodies(
        self, verb: str, target: _Target, before: StoredObject | None, after: StoredObject | None
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(requestObject, responseObject) of a successful write, as kube-apiserver records them."""
        if after is None:  # delete: DeleteOptions in, a Status out
            uid = before.uid if before is not None else ""
            status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            details = {"name": target.name, "group": target.group, "kind": target.resource, "uid": uid}
            options = {"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1", "propagationPolicy": "Background"}
            return options, {**status, "details": details}
        response = self._object(target, after)
        if verb == "patch":  # the request body is the patch: what changed
            if before is not None and after.spec_version == before.spec_version:
                return {"metadata": {"labels": {"tier": response["metadata"]["labels"]["tier"]}}}, response
            return {"spec": {"replicas": response["spec"]["replicas"], "image": response["spec"]["image"]}}, response
        metadata = response["metadata"]
        if verb == "create":  # the client sends no server-set fields
            sent = {k: v for k, v in metadata.items() if k not in ("uid", "resourceVersion", "creationTimestamp")}
            return {**response, "metadata": sent}, response
        # update: the client sends the object with the resourceVersion it read (the precondition)
        read = before.resource_version if before is not None else 0
        return {**response, "metadata": {**metadata, "resourceVersion": str(read)}}, response

    def request(self) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        self.now += self.settings.step
        received = self.now
        completed = received + timedelta(microseconds=rng.randint(500, 80_000))
        user = self._user()
        group, version, resource, namespaced = rng.choice(RESOURCES)
        index = rng.randrange(self.settings.objects)
        namespace = NAMESPACES[index % len(NAMESPACES)] if namespaced else ""
        target = _Target(group, version, resource, namespace, f"obj-{index}", index)
        before = self.stored(target)
        write = rng.random() < 0.3
        verb = self._verb(write, before is not None)
        failure = self._failure(verb, before is not None)
        code = FAILURES[failure][0] if failure else (201 if verb == "create" else 200)
        scope_type, scope_name = TENANTS[index % len(TENANTS)]
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        if namespace:
            path += f"/namespaces/{namespace}"
        name = target.name if verb not in ("list", "watch", "create") else ""
        path += f"/{resource}" + (f"/{name}" if name else "")
        if verb in ("list", "watch"):
            path += "?resourceVersion=0&limit=500" if verb == "list" else "?allowWatchBookmarks=true&watch=true"
        object_ref: dict[str, Any] = {"resource": resource, "apiVersion": version}
        if group:
            object_ref["apiGroup"] = group
        if namespace:
            object_ref["namespace"] = namespace
        if verb not in ("list", "watch"):
            object_ref["name"] = target.name
        level = "RequestResponse" if write and resource != "secrets" else "Metadata"
        decision = "forbid" if failure == "Forbidden" else "allow"
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
        if failure:
            status.update(
                status="Failure",
                reason=failure,
                message=FAILURES[failure][1].format(
                    user=user["username"],
                    verb=verb,
                    resource=resource,
                    kind=KINDS[resource],
                    group=group,
                    ns=namespace,
                    name=target.name,
                ),
                details={"name": target.name, "group": group, "kind": resource},
            )
        done = dict(base, stage="ResponseComplete", stageTimestamp=_stamp(completed), responseStatus=status)
        if write and not failure:
            after = self._write(verb, target, before)
            if level == "RequestResponse":
                sent, answered = self._bodies(verb, target, before, after)
                done["requestObject"] = first["requestObject"] = sent
                done["responseObject"] = answered
        return first, done

    def continue_at(self, start: datetime, step: timedelta) -> None:
        """Go on with the same cluster (objects, revision, random stream) on another clock, as if started there."""
        self.settings = replace(self.settings, start=start, step=step)
        self.now = start

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
