"""Delegated authorization: SubjectAccessReview attributes, allow/deny/failure answers, caches, and the cases that
skip the review (system:masters, always-allowed paths, AlwaysAllow mode)."""

from __future__ import annotations

import asyncio

import pytest
from auth_support import CREATE_PATH, AuthWorld, FakeKubeAuthAPI, Pki

from apiserver.auth.authorize import Attributes, Mode, PathMatcher, request_attributes
from apiserver.machinery.request import UserInfo

GV = "/apis/activity.miloapis.com/v1alpha1"
FORBIDDEN_CREATE = (
    'auditlogqueries.activity.miloapis.com is forbidden: User "alice" cannot create resource "auditlogqueries" '
    'in API group "activity.miloapis.com" at the cluster scope'
)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


async def test_allowed_create_and_the_review_it_sent(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "create", "auditlogqueries")})
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice)
        assert (status, body["name"]) == (200, "alice")
        assert fake.access_reviews == [
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SubjectAccessReview",
                "spec": {
                    "user": "alice",
                    "groups": ["dev", "ops", "system:authenticated"],
                    "resourceAttributes": {
                        "verb": "create",
                        "group": "activity.miloapis.com",
                        "version": "v1alpha1",
                        "resource": "auditlogqueries",
                    },
                },
            }
        ]
        await world.call(cert=pki.alice)
        assert len(fake.access_reviews) == 1  # allowed answer cached


async def test_denied_create_is_kubernetes_forbidden_and_cached(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(deny_reason='RBAC: clusterrole "activity-query" not found')
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice)
        assert status == 403
        assert body == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": FORBIDDEN_CREATE + ': RBAC: clusterrole "activity-query" not found',
            "reason": "Forbidden",
            "details": {"group": "activity.miloapis.com", "kind": "auditlogqueries"},
            "code": 403,
        }
        status, _ = await world.call(cert=pki.alice)
        assert status == 403
        assert len(fake.access_reviews) == 1  # denied answer cached
        fake.deny_reason = ""
        status, body = await world.call(cert=pki.alice, method="PUT")  # other attributes: asked again, no reason
        assert (status, body["message"]) == (403, FORBIDDEN_CREATE.replace("cannot create", "cannot update"))
        assert len(fake.access_reviews) == 2


async def test_discovery_is_a_non_resource_request(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "get", "/apis"), ("alice", "get", GV)})
    async with AuthWorld(pki, fake) as world:
        assert (await world.call("/apis", cert=pki.alice, method="GET"))[0] == 200
        assert (await world.call(GV, cert=pki.alice, method="GET"))[0] == 200
        status, body = await world.call("/openapi/v3", cert=pki.alice, method="GET")
    assert [r["spec"]["nonResourceAttributes"] for r in fake.access_reviews] == [
        {"path": "/apis", "verb": "get"},
        {"path": GV, "verb": "get"},
        {"path": "/openapi/v3", "verb": "get"},
    ]
    assert status == 403
    assert body["message"] == 'forbidden: User "alice" cannot get path "/openapi/v3"'
    assert body["details"] == {}


async def test_failed_review_is_500_without_internals(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(fail_access_reviews=True)
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice)
        assert status == 500
        assert body["reason"] == "InternalError"
        assert body["message"] == "Internal error occurred: the authorization check (SubjectAccessReview) failed"
        calls = len(fake.access_reviews)
        fake.fail_access_reviews = False
        fake.allowed.add(("alice", "create", "auditlogqueries"))
        status, _ = await world.call(cert=pki.alice)
        assert status == 200
        assert len(fake.access_reviews) == calls + 1  # failures are not cached


async def test_system_masters_skip_the_review(pki: Pki) -> None:
    admin = pki.issue(pki.client_ca, "kube-aggregator", ["system:masters"], "aggregator")
    fake = FakeKubeAuthAPI()
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(GV, cert=admin, method="GET")
    assert (status, body["name"]) == (200, "kube-aggregator")
    assert fake.access_reviews == []


async def test_configured_always_allow_paths_and_always_allow_mode(pki: Pki) -> None:
    fake = FakeKubeAuthAPI()
    async with AuthWorld(pki, fake, always_allow_paths=("/openapi/*",)) as world:
        assert (await world.call("/openapi/v2", cert=pki.alice, method="GET"))[0] == 200
        assert (await world.call("/healthz", cert=pki.alice, method="GET"))[0] == 403  # defaults replaced
    assert [r["spec"]["nonResourceAttributes"]["path"] for r in fake.access_reviews] == ["/healthz"]
    fake = FakeKubeAuthAPI()
    async with AuthWorld(pki, fake, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        assert (await world.call(cert=pki.alice))[0] == 200
    assert fake.access_reviews == []


ALICE = UserInfo("alice")


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/apis", Attributes(ALICE, "get", "/apis")),
        ("GET", "/apis/activity.miloapis.com", Attributes(ALICE, "get", "/apis/activity.miloapis.com")),
        ("GET", GV, Attributes(ALICE, "get", GV)),
        ("GET", "/openapi/v3/apis/x/y", Attributes(ALICE, "get", "/openapi/v3/apis/x/y")),
        ("GET", "/api/v1", Attributes(ALICE, "get", "/api/v1")),
        (
            "POST",
            CREATE_PATH,
            Attributes(ALICE, "create", CREATE_PATH, True, "activity.miloapis.com", "v1alpha1", "auditlogqueries"),
        ),
        (
            "GET",
            CREATE_PATH,
            Attributes(ALICE, "list", CREATE_PATH, True, "activity.miloapis.com", "v1alpha1", "auditlogqueries"),
        ),
        (
            "DELETE",
            CREATE_PATH,
            Attributes(
                ALICE, "deletecollection", CREATE_PATH, True, "activity.miloapis.com", "v1alpha1", "auditlogqueries"
            ),
        ),
        (
            "GET",
            CREATE_PATH + "/q1/status",
            Attributes(
                ALICE,
                "get",
                CREATE_PATH + "/q1/status",
                True,
                "activity.miloapis.com",
                "v1alpha1",
                "auditlogqueries",
                subresource="status",
                name="q1",
            ),
        ),
        (
            "PATCH",
            GV + "/namespaces/ns1/auditlogqueries/q1",
            Attributes(
                ALICE,
                "patch",
                GV + "/namespaces/ns1/auditlogqueries/q1",
                True,
                "activity.miloapis.com",
                "v1alpha1",
                "auditlogqueries",
                namespace="ns1",
                name="q1",
            ),
        ),
        (
            "GET",
            "/api/v1/namespaces/ns1",
            Attributes(
                ALICE, "get", "/api/v1/namespaces/ns1", True, "", "v1", "namespaces", namespace="ns1", name="ns1"
            ),
        ),
        ("GET", "/api/v1/pods", Attributes(ALICE, "list", "/api/v1/pods", True, "", "v1", "pods")),
    ],
)
def test_request_attributes_follow_kube_request_info(method: str, path: str, expected: Attributes) -> None:
    assert request_attributes(ALICE, method, path) == expected


def test_always_allow_path_patterns() -> None:
    matcher = PathMatcher(["/healthz", "/readyz/*", "/"])
    assert [matcher.matches(p) for p in ("/healthz", "/healthz/x", "/readyz/a/b", "/readyz", "/", "/x")] == [
        True,
        False,
        True,
        False,
        True,
        False,
    ]
    with pytest.raises(ValueError, match="only a trailing"):
        PathMatcher(["/a*/b"])


async def test_allowed_and_denied_answers_live_for_their_own_ttl(pki: Pki) -> None:
    """--authorization-webhook-cache-authorized-ttl and -unauthorized-ttl are separate: a deny not cached (0s)
    is asked again at once while the allow beside it is served from the cache until its own time is up."""
    fake = FakeKubeAuthAPI(allowed={("alice", "create", "auditlogqueries")})
    async with AuthWorld(pki, fake, authorized_ttl=0.5, unauthorized_ttl=0.0) as world:
        assert (await world.call(cert=pki.alice, method="PUT"))[0] == 403
        assert (await world.call(cert=pki.alice, method="PUT"))[0] == 403
        assert len(fake.access_reviews) == 2  # the deny was not kept
        assert (await world.call(cert=pki.alice))[0] == 200
        assert (await world.call(cert=pki.alice))[0] == 200
        assert len(fake.access_reviews) == 3  # the allow was
        await asyncio.sleep(1.0)  # well past the allow's 0.5 s
        assert (await world.call(cert=pki.alice))[0] == 200
        assert len(fake.access_reviews) == 4
