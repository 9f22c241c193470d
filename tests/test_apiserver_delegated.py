"""The whole server in Delegated mode, driven by the real kubectl: allowed, forbidden, token and unknown-CA users
see what kubectl shows for any Kubernetes API. kube-apiserver's TokenReview/SubjectAccessReview endpoints are
the auth area's test double (FakeKubeAuthAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiserver_support import ApiServerEnv, delegated_apiserver
from auth_support import FakeKubeAuthAPI, write_kubeconfig

QUERY = "apiVersion: activity.miloapis.com/v1alpha1\nkind: AuditLogQuery\nmetadata:\n  name: q\nspec:\n  limit: 1\n"
DISCOVERY = ("/api", "/apis")


@pytest.fixture(scope="module")
def fake() -> FakeKubeAuthAPI:
    allowed = {(user, "get", path) for user in ("alice", "bob", "carol") for path in DISCOVERY}
    allowed |= {("alice", "create", "auditlogqueries"), ("carol", "create", "auditlogqueries")}
    return FakeKubeAuthAPI(
        tokens={"carol-token": {"username": "carol", "groups": ["developers"]}},
        allowed=allowed,
        deny_reason="no RBAC policy matched",
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: FakeKubeAuthAPI) -> Iterator[ApiServerEnv]:
    with delegated_apiserver(tmp_path_factory.mktemp("delegated"), fake) as env:
        yield env


def test_an_allowed_user_creates_queries(server: ApiServerEnv) -> None:
    result = server.kubectl(
        "create", "--validate=false", "-f", "-", stdin=QUERY, kubeconfig=server.kubeconfig_for("alice")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "auditlogquery.activity.miloapis.com/q created"


def test_a_denied_user_sees_kubernetes_forbidden(server: ApiServerEnv) -> None:
    result = server.kubectl(
        "create", "--validate=false", "-f", "-", stdin=QUERY, kubeconfig=server.kubeconfig_for("bob")
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (Forbidden): error when creating "STDIN": auditlogqueries.activity.miloapis.com is '
        'forbidden: User "bob" cannot create resource "auditlogqueries" in API group "activity.miloapis.com" at the '
        "cluster scope: no RBAC policy matched"
    )


def test_a_bearer_token_is_reviewed(server: ApiServerEnv, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "carol.yaml", server.url, server.ca.cert_pem, "carol-token")
    result = server.kubectl("create", "--validate=false", "-f", "-", stdin=QUERY, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr


def test_an_unknown_token_is_unauthorized(server: ApiServerEnv, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "eve.yaml", server.url, server.ca.cert_pem, "forged-token")
    result = server.kubectl("create", "--validate=false", "-f", "-", stdin=QUERY, kubeconfig=kubeconfig)
    assert result.returncode == 1
    assert "error: You must be logged in to the server" in result.stderr
