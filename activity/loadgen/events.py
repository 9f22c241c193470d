"""Realistic audit events, shaped like kube-apiserver's, deterministic for a seed.

Each request yields a RequestReceived and a ResponseComplete event with the same auditID, as kube-apiserver
sends them. Users mix people, service accounts and `system:` components; objects spread over namespaces,
resources and tenants (scope annotations); writes at RequestResponse level carry request/response objects
whose spec changes from one write to the next, so `history --diff` has something to show.
"""

from __future__ import annotations

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
    "kube-controller-manager/v1.32.4",
    "Go-http-client/2.0",
    "prometheus/3.1",
)


@dataclass(frozen=True)
class GeneratorSettings:
    seed: int = 1
    start: datetime = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    step: timedelta = timedelta(milliseconds=10)  # time between consecutive requests
    objects: int = 200  # distinct objects, so histories have several versions


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventGenerator:
    """Yields request pairs (RequestReceived, ResponseComplete) in time order."""

    def __init__(self, settings: GeneratorSettings = GeneratorSettings()) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.now = settings.start
        self.generation: dict[int, int] = {}

    def _user(self) -> tuple[str, list[str]]:
        roll = self.rng.random()
        if roll < 0.45:
            return self.rng.choice(PEOPLE), ["oidc:developers", "system:authenticated"]
        if roll < 0.85:
            name = self.rng.choice(SERVICE_ACCOUNTS)
            ns = name.split(":")[2]
            return name, ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]
        return self.rng.choice(SYSTEM_USERS), ["system:masters", "system:authenticated"]

    def _object(self, index: int, resource: str, group: str, version: str) -> dict[str, Any]:
        gen = self.generation.get(index, 0)
        kind = resource[:-1].capitalize() if resource.endswith("s") else resource
        return {
            "kind": kind,
            "apiVersion": f"{group}/{version}" if group else version,
            "metadata": {
                "name": f"obj-{index}",
                "resourceVersion": str(1000 + gen),
                "generation": gen + 1,
                "labels": {"app": f"app-{index % 7}"},
            },
            "spec": {
                "replicas": 1 + gen % 5,
                "image": f"registry.example.com/app:{gen}",
                "paused": gen % 3 == 0,
            },
        }

    def request(self) -> tuple[dict[str, Any], dict[str, Any]]:
        rng = self.rng
        self.now += self.settings.step
        received = self.now
        completed = received + timedelta(microseconds=rng.randint(500, 80_000))
        username, groups = self._user()
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
        object_ref: dict[str, Any] = {"resource": resource, "apiVersion": version}
        if group:
            object_ref["apiGroup"] = group
        if namespace:
            object_ref["namespace"] = namespace
        if verb not in ("list", "watch"):
            object_ref["name"] = f"obj-{index}"
        level = "RequestResponse" if write and resource != "secrets" else "Metadata"
        base: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "requestURI": path,
            "verb": verb,
            "user": {
                "username": username,
                "uid": f"uid-{zlib.crc32(username.encode()) % 10_000}",
                "groups": groups,
            },
            "sourceIPs": [f"10.{rng.randrange(4)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"],
            "userAgent": rng.choice(USER_AGENTS),
            "objectRef": object_ref,
            "requestReceivedTimestamp": _stamp(received),
            "annotations": {
                "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                "authorization.k8s.io/reason": "",
                SCOPE_TYPE_ANNOTATION: scope_type,
                SCOPE_NAME_ANNOTATION: scope_name,
            },
        }
        first = dict(base, stage="RequestReceived", stageTimestamp=_stamp(received))
        first.pop("annotations")
        done = dict(
            base,
            stage="ResponseComplete",
            stageTimestamp=_stamp(completed),
            responseStatus={"metadata": {}, "code": code},
        )
        if level == "RequestResponse" and code < 400:
            if verb != "delete":
                self.generation[index] = self.generation.get(index, 0) + 1
            obj = self._object(index, resource, group, version)
            done["requestObject"] = obj
            done["responseObject"] = obj
            first["requestObject"] = obj
        return first, done

    def events(self, requests: int) -> Iterator[dict[str, Any]]:
        """2 x `requests` events: each request's RequestReceived then its ResponseComplete."""
        for _ in range(requests):
            yield from self.request()
