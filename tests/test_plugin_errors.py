"""What users see when something is wrong (kubectl's wording, exit 1, never a traceback), and the basic kubeconfig
features: --kubeconfig, --context, tokens and exec credential plugins (tests/test_plugin_identity.py compares
every kubeconfig field with what the real kubectl sends)."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from plugin_support import PluginEnv, plugin

from apiserver.machinery.status import forbidden
from kubectl_activity.client import ActivityClient
from kubectl_activity.errors import PluginError, status_message
from kubectl_activity.transport import Response

__all__ = ["plugin"]


def kubeconfig(path: Path, plugin: PluginEnv, users: dict[str, dict[str, Any]], current: str, server: str = "") -> Path:
    """A kubeconfig with one context per user (named after it), all on the test server unless `server` says."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": server or plugin.server.url,
                            "certificate-authority": str(plugin.server.ca_file),
                        },
                    }
                ],
                "users": [{"name": name, "user": user} for name, user in users.items()],
                "contexts": [{"name": name, "context": {"cluster": "c", "user": name}} for name in users],
                "current-context": current,
            }
        )
    )
    return path


def no_traceback(text: str) -> bool:
    return "Traceback" not in text and 'File "' not in text


def test_invalid_filter_is_reported_as_kubectl_reports_it(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--filter", "verb == 42")
    assert done.returncode == 1
    assert done.stdout == ""
    first = done.stderr.splitlines()[0]
    assert first.startswith('The AuditLogQuery "kubectl-activity-')
    assert '" is invalid: spec.filter: Invalid value: "verb == 42": ' in first
    assert no_traceback(done.stderr)


def test_several_invalid_fields_are_a_block(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--filter", "verb == 42", "--start-time", "yesterday")
    assert done.returncode == 1
    head, *causes = done.stderr.strip().splitlines()
    assert head.startswith('The AuditLogQuery "kubectl-activity-') and head.endswith('" is invalid:')
    assert sorted(c.split(":")[0] for c in causes) == ["* spec.filter", "* spec.startTime"]


def test_a_filter_flag_value_cannot_break_the_filter(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--actor", 'x" || true || "', "--start-time", "now-6h", "-o", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == []


def test_unknown_output_format(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "-o", "csv")
    assert done.returncode == 1
    assert 'unable to match a printer suitable for the output format "csv"' in done.stderr
    bad = plugin.kubectl("query", "-o", "jsonpath={.items[[}")
    assert bad.returncode == 1 and "error parsing jsonpath" in bad.stderr and no_traceback(bad.stderr)


def test_unauthenticated_token_is_you_must_be_logged_in(plugin: PluginEnv, tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "token", plugin, {"t": {"token": "not-a-known-token"}}, "t")
    done = plugin.kubectl("query", kubeconfig=config)
    assert done.returncode == 1
    assert done.stderr.startswith("error: You must be logged in to the server (")
    assert no_traceback(done.stderr)


def test_forbidden_is_worded_as_kubectl_words_it() -> None:
    status = forbidden("alice", "create", "auditlogqueries", "activity.miloapis.com").body()
    assert status_message(status, 403) == (
        'Error from server (Forbidden): auditlogqueries.activity.miloapis.com is forbidden: User "alice" '
        'cannot create resource "auditlogqueries" in API group "activity.miloapis.com" at the cluster scope'
    )


def test_unreachable_server_names_server_and_context_with_a_hint(plugin: PluginEnv, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the test connects: nothing listens there
    cert, key = plugin.server.client_pair("admin", ["system:masters"])
    users = {"away": {"client-certificate": str(cert), "client-key": str(key)}}
    config = kubeconfig(tmp_path / "away", plugin, users, "away", f"https://127.0.0.1:{port}")
    done = plugin.kubectl("query", kubeconfig=config)
    assert done.returncode == 1
    assert f"cannot reach the Activity API at https://127.0.0.1:{port} (context 'away')" in done.stderr
    assert "kubectl get apiservice v1alpha1.activity.miloapis.com" in done.stderr
    assert no_traceback(done.stderr)


def test_kubeconfig_and_context_flags(plugin: PluginEnv, tmp_path: Path) -> None:
    cert, key = plugin.server.client_pair("admin", ["system:masters"])
    users = {"broken": {"token": "nope"}, "good": {"client-certificate": str(cert), "client-key": str(key)}}
    config = kubeconfig(tmp_path / "two", plugin, users, "broken")
    assert plugin.kubectl("query", "--kubeconfig", str(config)).returncode == 1  # the current context fails
    chosen = plugin.kubectl("query", "--kubeconfig", str(config), "--context", "good", "-o", "json", "--limit", "3")
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout)["items"] == plugin.server.newest_first()[:3]

    missing = plugin.kubectl("query", "--kubeconfig", str(config), "--context", "nowhere")
    assert missing.returncode == 1
    assert missing.stderr.startswith('error: context "nowhere" does not exist')  # kubectl's words


@pytest.mark.parametrize("version", ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"])
def test_exec_credential_plugin(plugin: PluginEnv, tmp_path: Path, version: str) -> None:
    cert, key = plugin.server.client_pair("exec-user", ["system:masters"])
    credential = {
        "apiVersion": version,
        "kind": "ExecCredential",
        "status": {"clientCertificateData": cert.read_text(), "clientKeyData": key.read_text()},
    }
    helper = tmp_path / "credential.py"
    helper.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    exec_user = {
        "exec": {"apiVersion": version, "command": sys.executable, "args": [str(helper)], "interactiveMode": "Never"}
    }
    config = kubeconfig(tmp_path / "exec", plugin, {"x": exec_user}, "x")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = plugin.kubectl("query", "-o", "json", "--limit", "2", kubeconfig=config, TMPDIR=str(scratch))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == plugin.server.newest_first()[:2]
    assert list(scratch.iterdir()) == [], "no copy of the private key is left behind"


@pytest.mark.parametrize("code", [404, 503])
def test_missing_or_unavailable_apiservice_gets_a_hint(code: int) -> None:
    status = {"kind": "Status", "status": "Failure", "reason": "ServiceUnavailable" if code == 503 else "NotFound"}
    status["message"] = "service unavailable" if code == 503 else "the server could not find the requested resource"
    client = ActivityClient()
    with pytest.raises(PluginError) as raised:
        client._page(Response(code, "", (), json.dumps(status).encode()))
    first, hint = str(raised.value).splitlines()
    assert first == f"Error from server ({status['reason']}): {status['message']}"
    assert hint.startswith("hint: is the APIService v1alpha1.activity.miloapis.com registered and Available")
