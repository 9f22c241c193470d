"""The kubeconfig loader on its own: a pod's service account when there is no kubeconfig (as kubectl), and any
hostile document is a PluginError naming the problem, never a crash. (What is sent on the wire is compared with
the real kubectl in test_plugin_identity.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_activity.errors import PluginError
from kubectl_activity.execcred import parse_credential
from kubectl_activity.kubeconfig import ExecConfig, Overrides, client_config


def service_account(directory: Path) -> Path:
    directory.mkdir()
    (directory / "token").write_text("sa-token\n")
    (directory / "ca.crt").write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    return directory


def test_in_a_pod_without_a_kubeconfig_the_service_account_is_used(tmp_path: Path) -> None:
    account = service_account(tmp_path / "sa")
    environ = {"HOME": str(tmp_path), "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = client_config(Overrides(impersonate="bob"), environ, service_account=account)
    assert config.server == "https://10.0.0.1:443"
    assert config.token == "sa-token"
    assert config.ca is not None and config.ca.path == str(account / "ca.crt")
    assert config.impersonation.user == "bob"  # flags apply to it as to any kubeconfig


def test_without_kubeconfig_or_pod_there_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as raised:
        client_config(Overrides(), {"HOME": str(tmp_path)}, service_account=tmp_path / "none")
    assert "no server found" in str(raised.value) and "--kubeconfig" in str(raised.value)


def test_an_explicit_kubeconfig_must_exist(tmp_path: Path) -> None:
    with pytest.raises(PluginError) as raised:
        client_config(Overrides(kubeconfig=str(tmp_path / "missing")), {"HOME": str(tmp_path)})
    assert "cannot read the kubeconfig" in str(raised.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
USER_KEYS = [
    "token",
    "tokenFile",
    "as",
    "as-groups",
    "as-uid",
    "as-user-extra",
    "username",
    "password",
    "exec",
    "client-certificate-data",
    "client-key-data",
    "auth-provider",
]
CLUSTER_KEYS = [
    "server",
    "certificate-authority-data",
    "insecure-skip-tls-verify",
    "tls-server-name",
    "proxy-url",
    "extensions",
]


@st.composite
def kubeconfigs(draw: st.DrawFn) -> Any:
    user = {k: draw(json_values) for k in draw(st.lists(st.sampled_from(USER_KEYS), max_size=4, unique=True))}
    cluster = {"server": "https://127.0.0.1:1"} | {
        k: draw(json_values) for k in draw(st.lists(st.sampled_from(CLUSTER_KEYS), max_size=3, unique=True))
    }
    document: dict[str, Any] = {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    for key in draw(st.lists(st.sampled_from(list(document)), max_size=2, unique=True)):
        document[key] = draw(json_values)  # a whole section of the wrong shape
    return document


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kubeconfigs())
def test_any_document_is_a_client_config_or_a_plugin_error(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(document))
    try:
        client_config(Overrides(kubeconfig=str(path)), {"HOME": str(tmp_path)}, service_account=tmp_path / "none")
    except PluginError as err:
        assert str(err).startswith("error: ")


@given(json_values, st.sampled_from(["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]))
def test_any_exec_plugin_output_is_a_credential_or_a_plugin_error(status: Any, version: str) -> None:
    config = ExecConfig(version, "helper")
    for output in (json.dumps(status), json.dumps({"apiVersion": version, "kind": "ExecCredential", "status": status})):
        try:
            credential = parse_credential(config, output)
        except PluginError as err:
            assert str(err).startswith("error: getting credentials from the exec plugin helper: ")
        else:
            assert credential.token or (credential.client_cert and credential.client_key)
