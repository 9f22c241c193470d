"""The kubectl plugin under test: the real `kubectl` finds `kubectl-activity` (the installed console script) on
PATH and runs it against an in-process API server (tests/apiserver_support.py) holding generated events, plus a
Deployment with several versions (for history) and users whose names need quoting in CEL.

Import the `plugin` fixture into a test module (`from plugin_support import plugin`).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sysconfig
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from apiserver_support import ApiServerEnv, apiserver_with_events

SCRIPTS = sysconfig.get_path("scripts")  # where pip installed the kubectl-activity console script
HISTORY_NAMESPACE = "shop"
HISTORY_NAME = "web"
OTHER_NAMESPACE = "shop-2"
# Stored user names that need escaping in a CEL string literal.
AWKWARD_USERS = (
    "o'brien@example.com",
    'say "hi"',
    "back\\slash",
    "zoë@例え.jp",
    "tab\tand space",
    "system:it's-me",
    "emoji 🚀 user",
)


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def deployment(replicas: int, image: str, labels: dict[str, str], generation: int) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": HISTORY_NAME,
            "namespace": HISTORY_NAMESPACE,
            "labels": labels,
            "generation": generation,
            "resourceVersion": str(1000 + generation),
            "managedFields": [{"manager": "kubectl", "time": f"t{generation}"}],
        },
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}},
    }


@dataclass(frozen=True)
class Write:
    verb: str
    user: str
    code: int
    obj: dict[str, Any] | None  # responseObject


# The Deployment's life: created, scaled, relabelled (metadata only), a failed update, new image, deleted.
WRITES = (
    Write("create", "alice@example.com", 201, deployment(1, "web:1", {"app": "web"}, 1)),
    Write("update", "bob@example.com", 200, deployment(3, "web:1", {"app": "web"}, 2)),
    Write("patch", "carol@example.com", 200, deployment(3, "web:1", {"app": "web", "tier": "front"}, 3)),
    Write("update", "dave@example.com", 409, None),
    Write("update", "erin@example.com", 200, deployment(3, "web:2", {"app": "web", "tier": "front"}, 4)),
    Write("delete", "frank@example.com", 200, None),
)


def history_events(start: datetime) -> list[dict[str, Any]]:
    """RequestReceived + ResponseComplete for each write (only the latter is history), and a `get` between."""
    events = []
    for i, write in enumerate(WRITES):
        moment = timestamp(start + timedelta(minutes=i))
        base: dict[str, Any] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "RequestResponse",
            "auditID": str(uuid.UUID(int=i + 1)),
            "requestURI": f"/apis/apps/v1/namespaces/{HISTORY_NAMESPACE}/deployments/{HISTORY_NAME}",
            "verb": write.verb,
            "user": {"username": write.user, "groups": ["system:authenticated"]},
            "sourceIPs": ["10.1.2.3"],
            "userAgent": "kubectl/v1.32.0",
            "objectRef": {
                "resource": "deployments",
                "apiGroup": "apps",
                "apiVersion": "v1",
                "namespace": HISTORY_NAMESPACE,
                "name": HISTORY_NAME,
            },
            "requestReceivedTimestamp": moment,
            "stageTimestamp": moment,
        }
        events.append(base | {"stage": "RequestReceived"})
        done = base | {"stage": "ResponseComplete", "responseStatus": {"code": write.code}}
        if write.obj is not None:
            done["responseObject"] = write.obj
        events.append(done)
        read = base | {"verb": "get", "auditID": str(uuid.UUID(int=100 + i)), "stage": "ResponseComplete"}
        events.append(read | {"responseStatus": {"code": 200}})
    namesake = events[1] | {"auditID": str(uuid.UUID(int=99))}  # the same name in another namespace
    namesake["objectRef"] = namesake["objectRef"] | {"namespace": OTHER_NAMESPACE}
    return [*events, namesake]


def awkward_events(start: datetime) -> list[dict[str, Any]]:
    events = []
    for i, user in enumerate(AWKWARD_USERS):
        moment = timestamp(start + timedelta(seconds=i))
        events.append(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": str(uuid.UUID(int=1000 + i)),
                "stage": "ResponseComplete",
                "requestURI": "/api/v1/namespaces/odd/configmaps/cm",
                "verb": "get",
                "user": {"username": user, "groups": []},
                "objectRef": {"resource": "configmaps", "apiVersion": "v1", "namespace": user, "name": user},
                "responseStatus": {"code": 200},
                "requestReceivedTimestamp": moment,
                "stageTimestamp": moment,
            }
        )
    return events


def posted_specs(stderr: str) -> list[dict[str, object]]:
    """The spec of each AuditLogQuery the plugin sent, from its -v=8 log."""
    bodies = re.findall(r'"Request Body" body=(\{.*\})$', stderr, flags=re.MULTILINE)
    return [json.loads(body)["spec"] for body in bodies]


def statuses(stderr: str) -> list[str]:
    return re.findall(r"Response Status: (\d+) ", stderr)


class PluginEnv:
    def __init__(self, server: ApiServerEnv) -> None:
        self.server = server
        self.env = {
            **{k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")},
            "PATH": SCRIPTS + os.pathsep + os.environ["PATH"],
            "KUBECONFIG": str(server.kubeconfig),
            "KUBECACHEDIR": str(server.directory / "kubecache"),
        }

    @property
    def events(self) -> list[dict[str, Any]]:
        return self.server.events

    def kubectl(self, *args: str, kubeconfig: Path | None = None, **env_vars: str) -> subprocess.CompletedProcess[str]:
        """`kubectl activity ARGS` with stdout and stderr captured (not a terminal)."""
        env = self.env | ({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}) | env_vars
        return subprocess.run(
            ["kubectl", "activity", *args], capture_output=True, text=True, env=env, timeout=120, check=False
        )

    def kubectl_on_tty(self, *args: str) -> str:
        """`kubectl activity ARGS` with stdout on a pseudo-terminal (util-linux `script`); returns what it showed."""
        command = shlex.join(["kubectl", "activity", *args])
        done = subprocess.run(
            ["script", "-qec", command, "/dev/null"],
            capture_output=True,
            env=self.env | {"TERM": "xterm-256color", "COLUMNS": "200"},
            timeout=120,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return done.stdout.decode().replace("\r\n", "\n")

    def items(self, *args: str) -> list[dict[str, Any]]:
        """The events `kubectl activity query ARGS --all-pages -o json` prints."""
        done = self.kubectl("query", *args, "--all-pages", "-o", "json")
        assert done.returncode == 0, done.stderr
        items: list[dict[str, Any]] = orjson.loads(done.stdout)["items"]
        return items


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    if not (Path(SCRIPTS) / "kubectl-activity").exists():
        pytest.fail(f"kubectl-activity is not installed in {SCRIPTS}: run `pip install -e .` first")
    with apiserver_with_events(tmp_path_factory) as server:
        earlier = datetime.now(UTC) - timedelta(hours=3)  # older than the generated events (the last hour)
        server.insert_events(history_events(earlier) + awkward_events(earlier - timedelta(minutes=30)))
        yield PluginEnv(server)
