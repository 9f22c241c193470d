"""Scenarios that run unchanged against every Activity target: the kind cluster (tests/test_e2e_kind.py) and
`activity up` (tests/test_scenarios_local.py), so CI proves on the local stack what the e2e harness proves on kind.

A target says who it acts as, how to run the real kubectl (with the `kubectl-activity` plugin on PATH) against
it, and how to make a change that leaves an audit trail: on kind a real kubectl write that kube-apiserver
audits; locally the ResponseComplete event kube-apiserver would send under test-infra/audit-policy.yaml, posted
to the webhook. A scenario makes changes, then finds them with `kubectl activity query` and `history --diff`.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import yaml

GROUP_VERSION = "/apis/activity.miloapis.com/v1alpha1"
FOUND_TIMEOUT_S = 180.0  # kube-apiserver batches for up to 5 s (kind config), the consumer by age: generous
OLD_IMAGE = "registry.k8s.io/pause:3.9"
NEW_IMAGE = "registry.k8s.io/pause:3.10"


@dataclass(frozen=True)
class Kind:
    """How kube-apiserver names a kind in URLs and audit objectRefs."""

    api_group: str
    version: str
    resource: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.api_group}/{self.version}" if self.api_group else self.version

    @property
    def kubectl_name(self) -> str:
        return f"{self.resource}.{self.api_group}" if self.api_group else self.resource


KINDS = {
    "Namespace": Kind("", "v1", "namespaces", namespaced=False),
    "Deployment": Kind("apps", "v1", "deployments", namespaced=True),
}


@dataclass(frozen=True)
class Change:
    """One write: `obj` is the object after it (for a delete, the object deleted); a patch sends `patch`."""

    verb: str  # create, patch or delete
    obj: dict[str, Any]
    patch: dict[str, Any] | None = None

    @property
    def kind(self) -> Kind:
        return KINDS[self.obj["kind"]]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        return self.obj["metadata"].get("namespace") if self.kind.namespaced else None


class Target(Protocol):
    @property
    def user(self) -> str:
        """The user name kube-apiserver records for the target's changes."""
        ...

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """The real kubectl against the target, the plugin on PATH, output captured."""
        ...

    def apply(self, change: Change) -> None:
        """Make `change` happen so that its audit event reaches the target's webhook."""
        ...


def deployment(namespace: str, name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    """A Deployment that schedules nothing (no replicas): its writes are all the test needs."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": image}]},
            },
        },
    }


@dataclass(frozen=True)
class Lifecycle:
    """A fresh namespace, and in it a Deployment created, relabelled, given a new image and deleted."""

    namespace: str = field(default_factory=lambda: f"scenario-{uuid.uuid4().hex[:8]}")
    name: str = "web"

    @property
    def changes(self) -> tuple[Change, ...]:
        first = deployment(self.namespace, self.name, OLD_IMAGE, {"app": self.name})
        relabelled = deployment(self.namespace, self.name, OLD_IMAGE, {"app": self.name, "tier": "front"})
        new_image = deployment(self.namespace, self.name, NEW_IMAGE, {"app": self.name, "tier": "front"})
        image_patch = {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": NEW_IMAGE}]}}}}
        return (
            Change("create", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}),
            Change("create", first),
            Change("patch", relabelled, {"metadata": {"labels": {"tier": "front"}}}),
            Change("patch", new_image, image_patch),
            Change("delete", new_image),
        )

    @property
    def deployment_verbs(self) -> list[str]:
        return [c.verb for c in self.changes if c.obj["kind"] == "Deployment"]


def plugin_items(target: Target, *args: str) -> list[dict[str, Any]]:
    """The events `kubectl activity query ARGS --all-pages -o json` prints, newest first."""
    done = target.kubectl("activity", "query", *args, "--all-pages", "-o", "json")
    assert done.returncode == 0, done.stderr
    items: list[dict[str, Any]] = json.loads(done.stdout)["items"]
    return items


def wait_for_items(
    target: Target, enough: Callable[[list[dict[str, Any]]], bool], *args: str, timeout: float = FOUND_TIMEOUT_S
) -> list[dict[str, Any]]:
    """`plugin_items(ARGS)` once `enough` says so, or at the timeout (for the caller's assertion to fail)."""
    deadline = time.monotonic() + timeout
    while True:
        items = plugin_items(target, *args)
        if enough(items) or time.monotonic() > deadline:
            return items
        time.sleep(2.0)


def _in_order(text: str, needles: Sequence[str]) -> bool:
    at = 0
    for needle in needles:
        at = text.find(needle, at)
        if at < 0:
            return False
        at += len(needle)
    return True


def changes_are_found_with_query_and_history(target: Target) -> None:
    """Writes to a Deployment come back from `kubectl activity query` (the target's user, oldest last) and
    `kubectl activity history --diff` (each write in order, the image change as a diff, the deletion)."""
    life = Lifecycle()
    for change in life.changes:
        target.apply(change)
    mine = ("-n", life.namespace, "--resource", "deployments", "--name", life.name, "--actor", target.user)
    writes = wait_for_items(target, lambda found: len(found) >= len(life.deployment_verbs), *mine, "--writes-only")
    assert [e["verb"] for e in reversed(writes)] == life.deployment_verbs
    assert [e["responseStatus"]["code"] for e in reversed(writes)] == [201, 200, 200, 200]
    assert {(e["objectRef"]["apiGroup"], e["stage"], e["level"]) for e in writes} == {
        ("apps", "ResponseComplete", "RequestResponse")
    }

    deletes = plugin_items(target, *mine, "--verb", "delete")
    assert [e["auditID"] for e in deletes] == [writes[0]["auditID"]]

    done = target.kubectl("activity", "history", "deployments", life.name, "-n", life.namespace, "--diff")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert _in_order(out, [f"{verb} by {target.user}" for verb in life.deployment_verbs]), out
    assert _in_order(out, ["Initial state", f"-      - image: {OLD_IMAGE}", f"+      - image: {NEW_IMAGE}", "deleted"])


def api_group_is_discoverable(target: Target) -> None:
    """kubectl finds the AuditLogQuery resource in the group's discovery document."""
    done = target.kubectl("get", "--raw", GROUP_VERSION)
    assert done.returncode == 0, done.stderr
    discovery = json.loads(done.stdout)
    assert discovery["groupVersion"] == "activity.miloapis.com/v1alpha1"
    assert [(r["name"], r["kind"], r["namespaced"]) for r in discovery["resources"]] == [
        ("auditlogqueries", "AuditLogQuery", False)
    ]


def bad_filter_is_explained(target: Target) -> None:
    """A filter that does not compile is refused with a message naming the field to fix, not a server error."""
    done = target.kubectl("activity", "query", "--filter", "verb = 'get'")
    assert done.returncode != 0
    assert "spec.filter" in done.stderr, done.stderr
    assert "Internal" not in done.stderr and "Traceback" not in done.stderr


def query_manifest(spec: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "activity.miloapis.com/v1alpha1", "kind": "AuditLogQuery", "spec": spec})
