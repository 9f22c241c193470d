"""Impersonation (`kubectl --as`) over real TLS, as the generic apiserver does it: every Impersonate-* header is
allowed by its own SubjectAccessReview (verb impersonate) asked as the caller, then the request runs as the
impersonated user alone. kube-apiserver's review endpoint is the test double (FakeKubeAuthAPI)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from auth_support import CREATE_PATH, AuthWorld, FakeKubeAuthAPI, Pki
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from apiserver.auth.impersonation import ImpersonationInvalid, Target, requested_targets

EXTRA_TYPE = "Impersonate-Extra-Iam.Miloapis.Com%2FParent-Type"  # percent-encoded and cased as clients may send it
EXTRA_NAME = "Impersonate-Extra-iam.miloapis.com%2fparent-name"
TYPE_KEY, NAME_KEY = "iam.miloapis.com/parent-type", "iam.miloapis.com/parent-name"
BOB_CREATES = ("bob", "create", "auditlogqueries")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def impersonation_reviews(fake: FakeKubeAuthAPI) -> list[dict[str, Any]]:
    return [
        {"user": r["spec"]["user"], **r["spec"]["resourceAttributes"]}
        for r in fake.access_reviews
        if r["spec"].get("resourceAttributes", {}).get("verb") == "impersonate"
    ]


async def test_without_the_right_to_impersonate_the_caller_gets_403_naming_the_user(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "create", "auditlogqueries"), BOB_CREATES})
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers={"Impersonate-User": "bob"})
    assert status == 403
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        'users "bob" is forbidden: User "alice" cannot impersonate resource "users" in API group "" '
        "at the cluster scope"
    )
    assert body["details"] == {"group": "", "kind": "users", "name": "bob"}
    assert impersonation_reviews(fake) == [
        {"user": "alice", "verb": "impersonate", "version": "v1", "resource": "users", "name": "bob"}
    ]
    # the request itself was never authorized: neither as alice nor as bob
    assert len(fake.access_reviews) == 1


async def test_with_the_right_the_request_runs_as_the_impersonated_user_alone(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(
        allowed={("alice", "impersonate", "users:bob"), ("alice", "impersonate", "userextras"), BOB_CREATES}
    )
    headers = [
        ("Impersonate-User", "bob"),
        (EXTRA_TYPE, "Project"),
        (EXTRA_NAME, "acme-web"),
    ]
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers=headers)
    assert status == 200, body
    assert body["name"] == "bob"
    assert body["groups"] == ["system:authenticated"]  # alice's groups (dev, ops) do not carry over
    assert body["extra"] == {TYPE_KEY: ["Project"], NAME_KEY: ["acme-web"]}
    assert body["identityHeaders"] == []  # the handler never sees Impersonate-*
    assert impersonation_reviews(fake) == [
        {"user": "alice", "verb": "impersonate", "version": "v1", "resource": "users", "name": "bob"},
        *(
            {
                "user": "alice",
                "verb": "impersonate",
                "group": "authentication.k8s.io",
                "version": "v1",
                "resource": "userextras",
                "subresource": key,
                "name": value,
            }
            for key, value in ((TYPE_KEY, "Project"), (NAME_KEY, "acme-web"))
        ),
    ]
    # the request itself is authorized as bob, with bob's extras
    request_review = fake.access_reviews[-1]["spec"]
    assert (request_review["user"], request_review["resourceAttributes"]["verb"]) == ("bob", "create")
    assert request_review["extra"] == {TYPE_KEY: ["Project"], NAME_KEY: ["acme-web"]}


async def test_each_group_extra_and_uid_is_checked(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "impersonate", "users"), ("alice", "impersonate", "groups:team-a")})
    async with AuthWorld(pki, fake) as world:
        group = await world.call(
            cert=pki.alice,
            headers=[("Impersonate-User", "bob"), ("Impersonate-Group", "team-a"), ("Impersonate-Group", "admins")],
        )
        extra = await world.call(cert=pki.alice, headers=[("Impersonate-User", "bob"), (EXTRA_TYPE, "Organization")])
        uid = await world.call(cert=pki.alice, headers=[("Impersonate-User", "bob"), ("Impersonate-Uid", "u-1")])
    assert [status for status, _ in (group, extra, uid)] == [403, 403, 403]
    assert group[1]["message"] == (
        'groups "admins" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" '
        "at the cluster scope"
    )
    assert extra[1]["message"] == (
        'userextras.authentication.k8s.io "Organization" is forbidden: User "alice" cannot impersonate resource '
        f'"userextras/{TYPE_KEY}" in API group "authentication.k8s.io" at the cluster scope'
    )
    assert uid[1]["message"] == (
        'uids.authentication.k8s.io "u-1" is forbidden: User "alice" cannot impersonate resource "uids" '
        'in API group "authentication.k8s.io" at the cluster scope'
    )


async def test_groups_and_uid_when_allowed(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(
        allowed={
            ("alice", "impersonate", "users"),
            ("alice", "impersonate", "groups"),
            ("alice", "impersonate", "uids"),
            BOB_CREATES,
        }
    )
    headers = [
        ("Impersonate-User", "bob"),
        ("Impersonate-Group", "team-a"),
        ("Impersonate-Group", "team-b"),
        ("Impersonate-Uid", "u-1"),
    ]
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers=headers)
    assert status == 200, body
    assert (body["name"], body["uid"], body["groups"]) == ("bob", "u-1", ["team-a", "team-b", "system:authenticated"])


@pytest.mark.parametrize(
    "headers",
    [
        [("Impersonate-Group", "admins")],
        [(EXTRA_TYPE, "Project")],
        [("Impersonate-Uid", "u-1")],
        [("Impersonate-User", ""), ("Impersonate-Group", "admins")],
    ],
)
async def test_anything_but_a_user_without_a_user_is_400(pki: Pki, headers: list[tuple[str, str]]) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "impersonate", "groups"), ("alice", "create", "auditlogqueries")})
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers=headers)
    assert status == 400
    assert body["reason"] == "BadRequest"
    assert "without Impersonate-User" in body["message"] and "--as=USER" in body["message"]
    assert fake.access_reviews == []  # nothing was asked, nothing ran


async def test_service_accounts_are_impersonated_as_kubernetes_names_them(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "impersonate", "serviceaccounts:builder")})
    fake.allowed.add(("system:serviceaccount:ci:builder", "create", "auditlogqueries"))
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(
            cert=pki.alice, headers={"Impersonate-User": "system:serviceaccount:ci:builder"}
        )
    assert status == 200, body
    assert body["name"] == "system:serviceaccount:ci:builder"
    assert body["groups"] == ["system:serviceaccounts", "system:serviceaccounts:ci", "system:authenticated"]
    (review,) = impersonation_reviews(fake)
    assert (review["resource"], review["namespace"], review["name"]) == ("serviceaccounts", "ci", "builder")


async def test_anonymous_is_unauthenticated_and_chosen_groups_are_kept(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(
        allowed={
            ("alice", "impersonate", "users"),
            ("alice", "impersonate", "groups"),
            ("system:anonymous", "create", "auditlogqueries"),
            BOB_CREATES,
        }
    )
    async with AuthWorld(pki, fake) as world:
        _, anonymous = await world.call(cert=pki.alice, headers={"Impersonate-User": "system:anonymous"})
        _, unauthenticated = await world.call(
            cert=pki.alice,
            headers=[("Impersonate-User", "bob"), ("Impersonate-Group", "system:unauthenticated")],
        )
    assert anonymous["groups"] == ["system:unauthenticated"]
    assert unauthenticated["groups"] == ["system:unauthenticated"]


async def test_the_impersonated_user_needs_the_right_to_the_request_itself(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "impersonate", "users"), ("alice", "create", "auditlogqueries")})
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers={"Impersonate-User": "bob"})
    assert status == 403
    assert body["message"].startswith('auditlogqueries.activity.miloapis.com is forbidden: User "bob" cannot create')


async def test_system_masters_may_impersonate_without_a_review(pki: Pki) -> None:
    root = pki.issue(pki.client_ca, "root", ["system:masters"], "root")
    fake = FakeKubeAuthAPI(allowed={BOB_CREATES})
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=root, headers={"Impersonate-User": "bob"})
    assert (status, body["name"]) == (200, "bob")
    assert impersonation_reviews(fake) == []


async def test_impersonating_through_the_front_proxy_is_checked_for_the_proxied_user(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("carol", "impersonate", "users"), BOB_CREATES})
    headers = [("X-Remote-User", "carol"), ("Impersonate-User", "bob")]
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(CREATE_PATH, cert=pki.front_proxy_client, headers=headers)
    assert (status, body["name"]) == (200, "bob")
    assert impersonation_reviews(fake)[0]["user"] == "carol"


@given(
    key=st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30),
    values=st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10), max_size=3),
    groups=st.lists(st.text(max_size=10), max_size=3),
)
def test_headers_become_targets_as_kubernetes_reads_them(key: str, values: list[str], groups: list[str]) -> None:
    """client-go percent-encodes extra keys into header names; the suffix is lower-cased, then decoded (so only
    ASCII letters change case), and every value is a target of its own, in Kubernetes' order."""
    headers = CIMultiDict(
        [("Impersonate-User", "bob")]
        + [("Impersonate-Group", g) for g in groups]
        + [("Impersonate-Extra-" + quote(key, safe=""), v) for v in values]
    )
    decoded = "".join(c.lower() if c.isascii() else c for c in key)
    assert requested_targets(headers) == [
        Target("users", "bob"),
        *(Target("groups", g) for g in groups),
        *(Target("userextras", v, "authentication.k8s.io", subresource=decoded) for v in values),
    ]
    del headers["Impersonate-User"]
    if groups or values:
        with pytest.raises(ImpersonationInvalid):
            requested_targets(headers)
    else:
        assert requested_targets(headers) == []


async def test_a_failed_review_is_a_500_never_an_impersonation(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(allowed={("alice", "impersonate", "users"), BOB_CREATES}, fail_access_reviews=True)
    async with AuthWorld(pki, fake) as world:
        status, body = await world.call(cert=pki.alice, headers={"Impersonate-User": "bob"})
    assert (status, body["reason"]) == (500, "InternalError")
    assert "SubjectAccessReview" in body["message"]
