"""The e2e scenarios (tests/scenario_support.py) against `activity up`: what the kind harness proves through
kube-apiserver's aggregation layer, proven here on the local stack. kube-apiserver's part is played by posting
the ResponseComplete events it would send under test-infra/audit-policy.yaml to the webhook, at the path the
kind webhook kubeconfig names."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import scenario_support
import yaml
from scenario_support import Change
from up_support import UpProcess, running_up

from activity.devtools.loadgen.batches import event_list

REPO = Path(__file__).resolve().parent.parent
USER = "scenario@example.com"
JSON = {"Content-Type": "application/json"}  # as kube-apiserver sends it
_SUCCESS = {"create": 201, "patch": 200, "delete": 200}


def webhook_path() -> str:
    """The receiver's path as kube-apiserver on kind is told it (the webhook kubeconfig's server URL)."""
    config = yaml.safe_load((REPO / "test-infra" / "audit-webhook-kubeconfig.yaml").read_text())
    return urlsplit(str(config["clusters"][0]["cluster"]["server"])).path


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_event(change: Change, user: str, moment: datetime) -> dict[str, Any]:
    """The ResponseComplete event kube-apiserver sends for `change` at level RequestResponse: the request body,
    and the stored object as the response (a delete answers with a Status)."""
    kind = change.kind
    path = f"/apis/{kind.api_version}" if kind.api_group else f"/api/{kind.version}"
    object_ref = {"resource": kind.resource, "name": change.name, "apiVersion": kind.version}
    if kind.api_group:
        object_ref["apiGroup"] = kind.api_group
    if change.namespace:
        path += f"/namespaces/{change.namespace}"
        object_ref["namespace"] = change.namespace
    path += f"/{kind.resource}" + ("" if change.verb == "create" else f"/{change.name}")
    stored = change.obj | {"metadata": change.obj["metadata"] | {"uid": f"uid-{change.name}"}}
    response = (
        {"kind": "Status", "apiVersion": "v1", "status": "Success", "details": {"name": change.name}}
        if change.verb == "delete"
        else stored
    )
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "requestURI": path,
        "verb": change.verb,
        "user": {"username": user, "groups": ["system:masters", "system:authenticated"]},
        "sourceIPs": ["172.18.0.1"],
        "userAgent": "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": _SUCCESS[change.verb]},
        "responseObject": response,
        "requestReceivedTimestamp": stamp(moment),
        "stageTimestamp": stamp(moment),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }
    if change.verb != "delete":
        event["requestObject"] = change.patch if change.verb == "patch" else change.obj
    return event


class UpTarget:
    """`activity up` as a scenario target: kubectl through the kubeconfig it wrote, changes as posted events."""

    def __init__(self, up: UpProcess) -> None:
        self.up = up
        self.events_url = f"http://127.0.0.1:{up.port_base}{webhook_path()}"  # the webhook is the first port

    @property
    def user(self) -> str:
        return USER

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return self.up.kubectl(*args, stdin=stdin)

    def apply(self, change: Change) -> None:
        event = audit_event(change, USER, datetime.now(UTC))
        answer = httpx.post(self.events_url, content=event_list([event]), headers=JSON, timeout=30.0)
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpTarget]:
    with running_up(tmp_path_factory.mktemp("scenarios") / "data") as up:
        yield UpTarget(up)


def test_changes_are_found_with_query_and_history(target: UpTarget) -> None:
    scenario_support.changes_are_found_with_query_and_history(target)


def test_api_group_is_discoverable(target: UpTarget) -> None:
    scenario_support.api_group_is_discoverable(target)


def test_bad_filter_is_explained(target: UpTarget) -> None:
    scenario_support.bad_filter_is_explained(target)
