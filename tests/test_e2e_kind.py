"""End to end on kind: kube-apiserver audits real kubectl writes to the webhook on its node (test-infra/), they
flow through NATS into ClickHouse, and come back through kube-apiserver's aggregation layer to `kubectl activity`.

Skips, saying why, without kind or a reachable Docker engine (`task test-e2e` runs it where both exist). The
scenarios shared with the local stack live in scenario_support; what only a real cluster has is tested here.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

pytest.importorskip("pytest_kind", reason="pytest-kind-ng is not installed: pip install -e '.[e2e]'")

import scenario_support
from e2e_support import APISERVICE, QUERIER_ROLE, KindTarget, kind_cluster, missing_prerequisite

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def kind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KindTarget]:
    why = missing_prerequisite()
    if why:
        pytest.skip(why)
    with kind_cluster(tmp_path_factory.mktemp("kind")) as target:
        yield target


def test_the_apiservice_is_available(kind: KindTarget) -> None:
    conditions = kind.kubectl_json("get", "apiservice", APISERVICE)["status"]["conditions"]
    assert {c["type"]: c["status"] for c in conditions}["Available"] == "True"


def test_kubectl_writes_are_found_with_query_and_history(kind: KindTarget) -> None:
    scenario_support.changes_are_found_with_query_and_history(kind)


def test_api_group_is_discoverable(kind: KindTarget) -> None:
    scenario_support.api_group_is_discoverable(kind)


def test_bad_filter_is_explained(kind: KindTarget) -> None:
    scenario_support.bad_filter_is_explained(kind)


def test_queries_are_not_audited_back(kind: KindTarget) -> None:
    """The audit policy gives the activity group level None: a query is not stored, though a write made after
    it is (kube-apiserver sends its audit events in order)."""
    query = kind.kubectl("activity", "query", "--limit", "5")  # one page: AuditLogQuery creates through the proxy
    assert query.returncode == 0 and query.stdout.startswith("TIMESTAMP"), query.stderr
    later = scenario_support.Lifecycle().changes[0]  # a namespace created after the query
    kind.apply(later)
    created = ("--resource", "namespaces", "--name", later.name, "--verb", "create")
    assert len(scenario_support.wait_for_items(kind, lambda found: len(found) == 1, *created)) == 1
    found = scenario_support.plugin_items(kind, "--filter", "objectRef.apiGroup == 'activity.miloapis.com'")
    assert found == []


def test_a_user_without_the_querier_role_is_denied(kind: KindTarget) -> None:
    """kube-apiserver refuses `create auditlogqueries` to a user no role grants it; bound to the querier role,
    the same user's query passes kube-apiserver and the activity apiserver's own delegated check."""
    user = "no-roles@example.com"
    manifest = scenario_support.query_manifest({"startTime": "now-1h", "limit": 1})
    denied = kind.kubectl("create", "--validate=false", "-f", "-", "-o", "json", stdin=manifest, as_user=user)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower() and user in denied.stderr, denied.stderr

    binding = "scenario-querier"
    kind.kubectl_ok("create", "clusterrolebinding", binding, f"--clusterrole={QUERIER_ROLE}", f"--user={user}")
    try:
        for _ in range(30):  # RBAC decisions follow a new binding within moments (an informer cache)
            allowed = kind.kubectl("create", "--validate=false", "-f", "-", "-o", "json", stdin=manifest, as_user=user)
            if allowed.returncode == 0:
                break
            time.sleep(1.0)
        assert allowed.returncode == 0, allowed.stderr
        assert json.loads(allowed.stdout)["kind"] == "AuditLogQuery"
    finally:
        kind.kubectl_ok("delete", "clusterrolebinding", binding)
