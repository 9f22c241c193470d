"""The kubeconfig loader on its own: a pod's service account when there is no kubeconfig (as kubectl), any
hostile document is a PluginError naming the problem, never a crash, and HTTPS_PROXY/NO_PROXY follow Go's
rules. (What is sent on the wire is compared with the real kubectl in test_plugin_identity.py.)"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubectl_activity.errors import PluginError
from kubectl_activity.execcred import parse_credential
from kubectl_activity.kubeconfig import ClientConfig, ExecConfig, Overrides, client_config
from kubectl_activity.transport import proxy_for


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


PROXY = "http://proxy.internal:3128"


@pytest.mark.parametrize(
    ("host", "no_proxy", "proxied"),
    [
        ("api.example.com", "", True),
        ("api.example.com", "example.com", False),  # a domain covers its subdomains
        ("example.com", "example.com", False),
        ("example.com", ".example.com", True),  # a leading dot: subdomains only
        ("api.example.com", "*.example.com", False),
        ("api.example.com", "other.com, api.example.com:6443", False),  # with the server's port
        ("api.example.com", "api.example.com:443", True),  # another port
        ("10.1.2.3", "10.0.0.0/8", False),
        ("10.1.2.3", "10.1.2.3", False),
        ("11.1.2.3", "10.0.0.0/8", True),
        ("api.example.com", "*", False),
        ("localhost", "", False),  # loopback is never proxied (Go's rule)
        ("127.0.0.2", "", False),
        ("::1", "", False),
    ],
)
def test_the_environments_proxy_follows_gos_rules(host: str, no_proxy: str, proxied: bool) -> None:
    config = ClientConfig(server=f"https://{host}:6443", context="", cluster="", user="")
    chosen = proxy_for(config, host, 6443, {"HTTPS_PROXY": PROXY, "NO_PROXY": no_proxy})
    assert chosen == (PROXY if proxied else "")
    assert proxy_for(config, host, 6443, {"https_proxy": PROXY, "no_proxy": no_proxy}) == chosen


def test_the_kubeconfigs_proxy_url_wins_and_odd_proxies_are_refused() -> None:
    config = ClientConfig(server="https://10.1.2.3:6443", context="", cluster="", user="", proxy_url=PROXY)
    assert proxy_for(config, "10.1.2.3", 6443, {"HTTPS_PROXY": "http://other:1", "NO_PROXY": "*"}) == PROXY
    plain = replace(config, proxy_url="")
    assert proxy_for(plain, "10.1.2.3", 6443, {"HTTPS_PROXY": "proxy.internal:3128"}) == PROXY  # scheme implied
    with pytest.raises(PluginError, match="only http:// proxies"):
        proxy_for(plain, "10.1.2.3", 6443, {"HTTPS_PROXY": "socks5://proxy.internal:1080"})


@pytest.mark.parametrize(
    "server", ["https://h:abc", "https://:443", "ftp://h", "https://[::1", "h:99999", "http://127.0.0.1:80"]
)
def test_a_server_that_is_not_an_https_url_is_refused(tmp_path: Path, server: str) -> None:
    path = tmp_path / "config"
    document = {
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "t", "as": "bob"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(PluginError) as raised:
        client_config(Overrides(kubeconfig=str(path)), {"HOME": str(tmp_path)})
    assert "server" in str(raised.value)
