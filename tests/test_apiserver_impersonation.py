"""Impersonation and refusals on the whole server, driven by the real kubectl (`--as`, a kubeconfig's `as` and
`as-user-extra`): the query runs as the impersonated user within its tenant, a caller without the right is
refused with Kubernetes' words, and every 401/403 is logged with who, what and why (never a credential)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from apiserver_support import ApiServerEnv, delegated_apiserver
from auth_support import FakeKubeAuthAPI, write_kubeconfig

from apiserver.registry.auditlogquery.scope import PARENT_NAME_EXTRA, PARENT_TYPE_EXTRA
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION

QUERY = "apiVersion: activity.miloapis.com/v1alpha1\nkind: AuditLogQuery\nmetadata:\n  name: q\nspec:\n  limit: 1000\n"
DISCOVERY = ("/api", "/apis")
TENANT = ("Project", "acme-web")
SECRET_TOKEN = "forged-token-never-logged"


@pytest.fixture(scope="module")
def fake() -> FakeKubeAuthAPI:
    allowed = {(user, "get", path) for user in ("alice", "bob", "mallory") for path in DISCOVERY}
    allowed |= {(user, "create", "auditlogqueries") for user in ("alice", "bob", "mallory")}
    allowed |= {("alice", "impersonate", "users:bob"), ("alice", "impersonate", "userextras")}
    return FakeKubeAuthAPI(allowed=allowed, deny_reason="no RBAC policy matched")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: FakeKubeAuthAPI) -> Iterator[ApiServerEnv]:
    with delegated_apiserver(tmp_path_factory.mktemp("impersonation"), fake, events=True) as env:
        yield env


def _acting_as_tenant_member(server: ApiServerEnv, caller: str) -> Path:
    """`caller`'s kubeconfig with a user entry that impersonates bob, a member of TENANT (kubectl's `as` and
    `as-user-extra`, as a platform engineer's kubeconfig carries them)."""
    document = yaml.safe_load(server.kubeconfig_for(caller).read_text())
    document["users"][0]["user"] |= {
        "as": "bob",
        "as-user-extra": {PARENT_TYPE_EXTRA: [TENANT[0]], PARENT_NAME_EXTRA: [TENANT[1]]},
    }
    path = server.directory / f"{caller}-as-bob.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def _in_tenant(event: dict[str, Any]) -> bool:
    annotations = event.get("annotations", {})
    return (annotations.get(SCOPE_TYPE_ANNOTATION), annotations.get(SCOPE_NAME_ANNOTATION)) == TENANT


def test_an_impersonating_caller_queries_as_the_user_within_its_tenant(
    server: ApiServerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    kubeconfig = _acting_as_tenant_member(server, "alice")
    result = server.kubectl("create", "--validate=false", "-f", "-", "-o", "json", stdin=QUERY, kubeconfig=kubeconfig)
    assert result.returncode == 0, result.stderr
    expected = server.newest_first(_in_tenant)
    assert expected and len(expected) < len(server.events)
    assert orjson.loads(result.stdout)["status"]["results"] == expected
    # the access log names who the query ran as, and who asked
    access = [r.getMessage() for r in caplog.records if r.name == "apiserver.access" and " 201 " in r.getMessage()]
    assert access and access[-1].endswith("user=bob impersonator=alice")


def test_a_caller_without_the_right_to_impersonate_is_refused(
    server: ApiServerEnv, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    result = server.kubectl(
        "create", "--validate=false", "-f", "-", "--as=bob", stdin=QUERY, kubeconfig=server.kubeconfig_for("mallory")
    )
    assert result.returncode == 1
    assert (
        'Error from server (Forbidden): error when creating "STDIN": users "bob" is forbidden: User "mallory" cannot '
        'impersonate resource "users" in API group "" at the cluster scope: no RBAC policy matched'
    ) in result.stderr
    denial = [r for r in caplog.records if r.getMessage().startswith("403 Forbidden")]
    assert denial
    assert denial[-1].getMessage() == (
        "403 Forbidden: user 'mallory' in groups ['system:authenticated'] may not impersonate users 'bob': "
        "no RBAC policy matched"
    )
    access = [r.getMessage() for r in caplog.records if r.name == "apiserver.access" and " 403 " in r.getMessage()]
    assert access and access[-1].endswith("user=mallory")


def test_every_refusal_is_logged_with_who_what_and_why(
    server: ApiServerEnv, fake: FakeKubeAuthAPI, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # a denied user: the authorizer's reason, or a plain statement when it gave none
    fake.deny_reason = ""
    try:
        denied = server.create({"limit": 1}, user="eve", groups=("dev",))
    finally:
        fake.deny_reason = "no RBAC policy matched"
    assert denied.status == 403
    # an unknown token: who cannot be said, what was presented can (never the token itself)
    forged = write_kubeconfig(tmp_path / "forged.yaml", server.url, server.ca.cert_pem, SECRET_TOKEN)
    assert server.kubectl("create", "--validate=false", "-f", "-", stdin=QUERY, kubeconfig=forged).returncode == 1
    messages = [r.getMessage() for r in caplog.records]
    assert (
        "403 Forbidden: user 'eve' in groups ['dev', 'system:authenticated'] may not create "
        "auditlogqueries.activity.miloapis.com: no rule allows it (the authorizer gave no reason)"
    ) in messages
    assert any(" 403 " in m and m.endswith("user=eve") for m in messages)  # the access log: once `user=-`
    unauthorized = [m for m in messages if m.startswith("401 Unauthorized")]
    assert unauthorized and unauthorized[-1].startswith(
        "401 Unauthorized: a caller with a bearer token may not create auditlogqueries.activity.miloapis.com: "
        "bearer token: invalid bearer token"
    )
    assert all(SECRET_TOKEN not in m for m in messages)
    # the same, as fields for --logging-format json
    structured = [r.__dict__ for r in caplog.records if "reason" in r.__dict__ and r.__dict__.get("user") == "eve"]
    assert structured and (structured[-1]["status"], structured[-1]["verb"]) == (403, "create")
    assert structured[-1]["resource"] == "auditlogqueries" and structured[-1]["reason"].startswith("no rule allows it")
