"""`kubectl activity history`: one object's writes oldest first, and --diff between its versions (plain text when
piped, coloured on a terminal)."""

from __future__ import annotations

import io
import re

import pytest
from plugin_support import HISTORY_NAME, HISTORY_NAMESPACE, OTHER_NAMESPACE, WRITES, PluginEnv, plugin
from rich.console import Console

from kubectl_activity import history
from kubectl_activity.resources import ResourceName, parse_resource

__all__ = ["plugin"]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_history_lists_the_writes_oldest_first(plugin: PluginEnv) -> None:
    done = plugin.kubectl("history", "deploy", HISTORY_NAME, "-n", HISTORY_NAMESPACE)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["TIMESTAMP", "VERB", "USER", "STATUS"]
    assert [row.split()[1:] for row in rows] == [[w.verb, w.user, str(w.code)] for w in WRITES]
    stamps = [row.split()[0] for row in rows]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize(
    ("typed", "resource", "group"),
    [
        ("deployments", "deployments", None),
        ("deployment", "deployments", None),
        ("Deployment", "deployments", None),
        ("deploy", "deployments", None),
        ("deployments.apps", "deployments", "apps"),
        ("networkpolicy", "networkpolicies", None),
        ("ingress", "ingresses", None),
        ("endpoints", "endpoints", None),
        ("svc", "services", None),
        ("gateway.gateway.networking.k8s.io", "gateways", "gateway.networking.k8s.io"),
    ],
)
def test_resource_forms(typed: str, resource: str, group: str | None) -> None:
    assert parse_resource(typed) == ResourceName(resource, group)


def test_history_with_a_group_and_without_namespace(plugin: PluginEnv) -> None:
    ambiguous = plugin.kubectl("history", "deployments.apps", HISTORY_NAME)
    assert ambiguous.returncode == 1
    assert f"changed in several namespaces ({HISTORY_NAMESPACE}, {OTHER_NAMESPACE}): choose one with -n" in (
        ambiguous.stderr
    )
    other = plugin.kubectl("history", "deployments.apps", HISTORY_NAME, "-n", OTHER_NAMESPACE)
    assert other.returncode == 0, other.stderr
    assert [row.split()[1:3] for row in other.stdout.splitlines()[1:]] == [[WRITES[0].verb, WRITES[0].user]]
    assert "No changes" in plugin.kubectl("history", "deployments.batch", HISTORY_NAME).stderr


def test_history_of_an_unknown_object_says_so(plugin: PluginEnv) -> None:
    done = plugin.kubectl("history", "deployments", HISTORY_NAME, "-n", "elsewhere")
    assert done.returncode == 0
    assert done.stdout == ""
    assert "No changes to deployments/web in namespace elsewhere" in done.stderr


def sections(text: str) -> list[str]:
    return [s for s in text.split("── ")[1:]]


def test_diff_shows_initial_state_then_each_change_in_order(plugin: PluginEnv) -> None:
    done = plugin.kubectl("history", "deploy", HISTORY_NAME, "-n", HISTORY_NAMESPACE, "--diff")
    assert done.returncode == 0, done.stderr
    assert not ANSI.search(done.stdout), "no colour codes when stdout is not a terminal"
    parts = sections(done.stdout)
    assert [p.split(" by ")[0].split()[1] for p in parts] == [w.verb for w in WRITES]
    created, scaled, relabelled, conflict, new_image, deleted = parts
    assert "Initial state" in created and "+  replicas: 1" in created and "+      - image: web:1" in created
    assert "-  replicas: 1\n+  replicas: 3" in scaled and "metadata only" not in scaled
    assert "metadata only" in relabelled and "+    tier: front" in relabelled
    assert "failed" in conflict and "@@" not in conflict
    assert "-      - image: web:1\n+      - image: web:2" in new_image
    assert "deleted" in deleted
    assert "managedFields" not in done.stdout


def test_diff_is_coloured_on_a_terminal(plugin: PluginEnv) -> None:
    shown = plugin.kubectl_on_tty("history", "deployments", HISTORY_NAME, "-n", HISTORY_NAMESPACE, "--diff")
    assert ANSI.search(shown)
    plain = ANSI.sub("", shown)
    assert "Initial state" in plain and "metadata only" in plain
    assert re.search(r"\x1b\[32m\+  replicas: 3", shown), "added lines are green"
    assert re.search(r"\x1b\[31m-  replicas: 1", shown), "removed lines are red"


def test_renderer_colours_only_for_a_terminal() -> None:
    before = {"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}, "data": {"k": "v1"}}
    after = {"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "2"}, "data": {"k": "v2"}}
    events = [
        {"verb": "update", "responseStatus": {"code": 200}, "responseObject": after, "user": {"username": "u"}},
        {"verb": "create", "responseStatus": {"code": 201}, "requestObject": before, "user": {"username": "u"}},
    ]
    outputs = {}
    for terminal in (True, False):
        out = io.StringIO()
        history.render_diffs(history.changes(events), Console(file=out, force_terminal=terminal, soft_wrap=True))
        outputs[terminal] = out.getvalue()
    assert ANSI.search(outputs[True]) and not ANSI.search(outputs[False])
    assert ANSI.sub("", outputs[True]) == outputs[False]
    assert "-  k: v1\n+  k: v2" in outputs[False]


def test_a_patch_request_body_is_not_taken_for_the_object() -> None:
    patch = {"verb": "patch", "requestObject": {"spec": {"replicas": 2}}, "responseStatus": {"code": 200}}
    assert history.object_state(patch) is None
    status = {"verb": "delete", "responseObject": {"kind": "Status", "status": "Success"}}
    assert history.object_state(status) is None
