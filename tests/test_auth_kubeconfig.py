"""Reaching kube-apiserver for delegated auth: kubeconfig files, the in-cluster service account, and the client."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from auth_support import AuthWorld, FakeKubeAuthAPI, Pki

from apiserver.auth.authorize import Mode
from apiserver.auth.kubeclient import KubeAPIError, KubeClient
from apiserver.auth.kubeconfig import BearerToken, KubeconfigError, in_cluster, load_kubeconfig


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def write(path: Path, cluster: dict[str, object], user: dict[str, object], **top: object) -> Path:
    document = {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "one", "context": {"cluster": "c", "user": "u"}}],
        **top,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def test_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ca.crt").write_bytes(b"CA")
    (tmp_path / "conf" / "token").write_text("sa-token\n")
    path = write(
        tmp_path / "conf" / "kubeconfig",
        {"server": "https://10.0.0.1:6443/", "certificate-authority": "ca.crt", "tls-server-name": "kubernetes"},
        {"tokenFile": "token"},
        **{"current-context": "one"},
    )
    connection = load_kubeconfig(path)
    assert (connection.server, connection.ca_pem, connection.tls_server_name) == (
        "https://10.0.0.1:6443",
        b"CA",
        "kubernetes",
    )
    assert BearerToken(connection).value() == "sa-token"


def test_inline_data_and_a_single_context_without_current_context(tmp_path: Path) -> None:
    path = write(
        tmp_path / "kubeconfig",
        {"server": "https://k", "certificate-authority-data": base64.b64encode(b"CA").decode()},
        {"token": "t", "client-certificate-data": base64.b64encode(b"C").decode()},
    )
    connection = load_kubeconfig(path)
    assert (connection.ca_pem, connection.token, connection.client_cert_pem) == (b"CA", "t", b"C")


@pytest.mark.parametrize(
    ("cluster", "user", "message"),
    [
        ({"server": "https://k"}, {"exec": {"command": "aws"}}, "exec and auth-provider users are not supported"),
        ({}, {"token": "t"}, "cluster 'c' has no server"),
        ({"server": "https://k", "certificate-authority-data": "%%"}, {}, "certificate-authority-data is not valid"),
        ({"server": "https://k", "certificate-authority": "missing.crt"}, {}, "missing.crt"),
    ],
)
def test_unusable_kubeconfigs_say_what_to_fix(
    tmp_path: Path, cluster: dict[str, object], user: dict[str, object], message: str
) -> None:
    with pytest.raises(KubeconfigError, match=message):
        load_kubeconfig(write(tmp_path / "kubeconfig", cluster, user))


def test_in_cluster_uses_the_service_account(tmp_path: Path) -> None:
    assert in_cluster({}, tmp_path) is None
    (tmp_path / "token").write_text("sa")
    (tmp_path / "ca.crt").write_bytes(b"CA")
    connection = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
    assert connection is not None
    assert (connection.server, connection.ca_pem, BearerToken(connection).value()) == (
        "https://[fd00::1]:443",
        b"CA",
        "sa",
    )


async def test_client_presents_its_kubeconfig_client_certificate(pki: Pki, tmp_path: Path) -> None:
    """Inline client-certificate-data/client-key-data reach the TLS handshake (the server echoes who we are)."""
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        cert, key = pki.alice
        path = write(
            tmp_path / "kubeconfig",
            {"server": world.url, "certificate-authority-data": base64.b64encode(pki.serving_ca.cert_pem).decode()},
            {
                "client-certificate-data": base64.b64encode(cert.read_bytes()).decode(),
                "client-key-data": base64.b64encode(key.read_bytes()).decode(),
            },
        )
        client = KubeClient(load_kubeconfig(path))
        try:
            status, body = await client.request("GET", "/whoami")
        finally:
            await client.close()
    assert (status, body["name"]) == (200, "alice")


async def test_client_retries_then_reports_a_failing_server(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(fail_access_reviews=True)
    async with AuthWorld(pki, fake) as world:
        client = KubeClient(load_kubeconfig(world.kubeconfig), retry_delays=(0.01, 0.01))
        try:
            with pytest.raises(KubeAPIError, match="HTTP 503"):
                await client.create("/apis/authorization.k8s.io/v1/subjectaccessreviews", {"spec": {}})
        finally:
            await client.close()
    assert len(fake.access_reviews) == 3
