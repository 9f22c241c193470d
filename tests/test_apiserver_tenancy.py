"""Tenancy end to end: identities as kube-apiserver's aggregator forwards them (front-proxy certificate plus
X-Remote-* headers, scope in user extras) confine what a query returns, whatever the filter or cursor says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from apiserver_support import ApiServerEnv, apiserver_with_events

from apiserver.registry.auditlogquery.scope import PARENT_NAME_EXTRA, PARENT_TYPE_EXTRA
from auditlog.fields import SCOPE_NAME_ANNOTATION, SCOPE_TYPE_ANNOTATION


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServerEnv]:
    with apiserver_with_events(tmp_path_factory, front_proxy=True) as env:
        yield env


def _tenant(env: ApiServerEnv, parent_type: str, parent_name: str) -> dict[str, Any]:
    extra = {PARENT_TYPE_EXTRA: [parent_type], PARENT_NAME_EXTRA: [parent_name]}
    return env.as_front_proxy("carol@example.com", ["tenant-users"], extra)


def _in_scope(parent_type: str, parent_name: str) -> Any:
    def keep(event: dict[str, Any]) -> bool:
        annotations = event.get("annotations", {})
        return bool(
            annotations.get(SCOPE_TYPE_ANNOTATION) == parent_type
            and annotations.get(SCOPE_NAME_ANNOTATION) == parent_name
        )

    return keep


@pytest.mark.parametrize(("parent_type", "parent_name"), [("Project", "acme-web"), ("Organization", "globex")])
def test_a_scoped_caller_sees_only_its_tenant(server: ApiServerEnv, parent_type: str, parent_name: str) -> None:
    answer = server.create({"limit": 1000}, **_tenant(server, parent_type, parent_name))
    assert answer.status == 201, answer.body
    expected = server.newest_first(_in_scope(parent_type, parent_name))
    assert expected and len(expected) < len(server.events)
    assert answer.json()["status"]["results"] == expected
    # a filter naming another tenant's scope cannot widen it
    widened = server.create(
        {"limit": 1000, "filter": f"annotations['{SCOPE_NAME_ANNOTATION}'] == 'acme'"},
        **_tenant(server, parent_type, parent_name),
    )
    assert all(e in expected for e in widened.json()["status"]["results"])


def test_a_platform_caller_sees_every_tenant(server: ApiServerEnv) -> None:
    answer = server.create({"limit": 1000}, **server.as_front_proxy("platform-admin", ["platform"]))
    assert answer.json()["status"]["results"] == server.newest_first()


def test_another_tenants_cursor_is_refused(server: ApiServerEnv) -> None:
    first = server.create({"limit": 2}, **_tenant(server, "Project", "acme-web")).json()["status"]
    assert first["continue"]
    stolen = server.create({"limit": 2, "continue": first["continue"]}, **_tenant(server, "Organization", "globex"))
    assert stolen.status == 422
    assert [c["field"] for c in stolen.json()["details"]["causes"]] == ["spec.continue"]


def test_unusable_scope_extras_are_forbidden(server: ApiServerEnv) -> None:
    caller = server.as_front_proxy("dave", [], {PARENT_TYPE_EXTRA: ["Galaxy"], PARENT_NAME_EXTRA: ["far"]})
    answer = server.create({"limit": 1}, **caller)
    assert answer.status == 403
    status = answer.json()
    assert status["reason"] == "Forbidden"
    assert status["message"].startswith(
        'auditlogqueries.activity.miloapis.com is forbidden: User "dave" cannot create resource "auditlogqueries" '
        'in API group "activity.miloapis.com" at the cluster scope: '
    )
    assert "Galaxy" in status["message"]


def test_identity_headers_without_the_front_proxy_certificate_are_ignored(server: ApiServerEnv) -> None:
    """A client certificate of an ordinary user, with forged headers claiming a scope that would fail: the
    headers are not read, so the caller is the certificate's user (unscoped here, so every tenant)."""
    forged = server.as_front_proxy("dave", [], {PARENT_TYPE_EXTRA: ["Galaxy"], PARENT_NAME_EXTRA: ["far"]})
    answer = server.create({"limit": 1000}, headers=forged["headers"], user="mallory", groups=())
    assert answer.status == 201
    assert answer.json()["status"]["results"] == server.newest_first()
