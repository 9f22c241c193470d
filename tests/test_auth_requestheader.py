"""Front-proxy (request-header) authentication over real TLS: X-Remote-* headers are believed only from a caller
holding a front-proxy certificate with an allowed CN, and never reach the handler."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from auth_support import AuthWorld, Pki
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from apiserver.auth.authorize import Mode
from apiserver.auth.requestheader import RequestHeaderConfig, user_from_headers


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def aggregator_headers(*extra: tuple[str, str]) -> CIMultiDict[str]:
    """What kube-apiserver's proxy sends for a Milo project user."""
    return CIMultiDict(
        [
            *extra,
            ("X-Remote-User", "bob@example.com"),
            ("X-Remote-Group", "team-a"),
            ("X-Remote-Group", "system:authenticated"),
            ("X-Remote-Extra-Iam.miloapis.com%2fparent-type", "Project"),
            ("X-Remote-Extra-Iam.miloapis.com%2fparent-name", "p1"),
        ]
    )


async def test_front_proxy_identity_is_honoured_and_headers_do_not_reach_the_handler(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.front_proxy_client, headers=aggregator_headers())
    assert status == 200
    assert body["name"] == "bob@example.com"
    assert body["groups"] == ["team-a", "system:authenticated"]  # not added twice
    assert body["extra"] == {"iam.miloapis.com/parent-type": ["Project"], "iam.miloapis.com/parent-name": ["p1"]}
    assert body["identityHeaders"] == []


async def test_uid_header_when_configured(pki: Pki) -> None:
    config = RequestHeaderConfig(uid_headers=("X-Remote-Uid",), allowed_names=("front-proxy-client",))
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, requestheader=config) as world:
        status, body = await world.call(
            cert=pki.front_proxy_client, headers=aggregator_headers(("X-Remote-Uid", "u-123"))
        )
    assert (status, body["uid"], body["identityHeaders"]) == (200, "u-123", [])


async def test_headers_from_a_client_cert_user_are_ignored(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.alice, headers=aggregator_headers())
    assert status == 200
    assert body["name"] == "alice"  # the certificate's identity, not the header's
    assert body["groups"] == ["dev", "ops", "system:authenticated"]
    assert body["extra"] == {}
    assert body["identityHeaders"] == []


async def test_headers_without_any_certificate_are_ignored(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(headers=aggregator_headers())
    assert (status, body["reason"]) == (401, "Unauthorized")
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        status, body = await world.call(headers=aggregator_headers())
    assert (status, body["name"], body["identityHeaders"]) == (200, "system:anonymous", [])


async def test_front_proxy_cert_with_a_cn_not_allowed_is_refused(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.other_proxy, headers=aggregator_headers())
    assert status == 401
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_empty_allowed_names_accept_any_cn_of_the_front_proxy_ca(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, requestheader=RequestHeaderConfig()) as world:
        status, body = await world.call(cert=pki.other_proxy, headers=aggregator_headers())
    assert (status, body["name"]) == (200, "bob@example.com")


async def test_front_proxy_cert_without_user_header_is_not_a_user(pki: Pki) -> None:
    # the front-proxy certificate itself is no identity: it is not signed by the client CA
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, _ = await world.call(cert=pki.front_proxy_client, headers={"X-Remote-Group": "system:masters"})
    assert status == 401


async def test_allowed_names_stop_client_cert_users_asserting_headers_when_cas_are_shared(pki: Pki) -> None:
    # misconfigured: the front-proxy CA is the client CA; alice's CN is not an allowed name, so her headers mean nothing
    async with AuthWorld(
        pki, authorization_mode=Mode.ALWAYS_ALLOW, requestheader_client_ca_file=pki.client_ca_file
    ) as w:
        status, body = await w.call(cert=pki.alice, headers=aggregator_headers())
    assert (status, body["name"]) == (200, "alice")


@given(
    key=st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30),
    values=st.lists(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=10), max_size=3),
)
def test_extra_keys_round_trip_through_percent_encoding(key: str, values: list[str]) -> None:
    """kube-apiserver percent-encodes extra keys into header names; we lower-case and decode them back."""
    header = "X-Remote-Extra-" + quote(key.lower(), safe="")
    headers = CIMultiDict([("X-Remote-User", "u")] + [(header, v) for v in values])
    user = user_from_headers(headers, RequestHeaderConfig())
    assert user is not None
    expected = {key.lower(): tuple(values)} if values else {}
    assert dict(user.extra) == expected


def test_user_is_the_first_non_empty_username_header_and_groups_are_every_value() -> None:
    config = RequestHeaderConfig(username_headers=("X-User-A", "X-User-B"), group_headers=("X-G1", "X-G2"))
    headers = CIMultiDict(
        [("X-User-A", ""), ("X-User-B", "carol"), ("X-G2", "b"), ("X-G1", "a1"), ("X-G1", ""), ("X-G1", "a2")]
    )
    user = user_from_headers(headers, config)
    assert user is not None
    assert (user.name, user.groups) == ("carol", ("a1", "a2", "b"))
    assert user_from_headers(CIMultiDict([("X-G1", "a")]), config) is None


async def test_a_front_proxy_certificate_without_a_user_is_refused_even_when_the_client_ca_signed_it(pki: Pki) -> None:
    """Shared CAs: the proxy's certificate is also a valid client certificate. Without X-Remote-User it was served
    as user front-proxy-client, unscoped (every tenant); the aggregator always names a user, so it is a 401."""
    shared_proxy = pki.issue(pki.client_ca, "front-proxy-client", [], "shared-proxy")
    async with AuthWorld(
        pki, authorization_mode=Mode.ALWAYS_ALLOW, requestheader_client_ca_file=pki.client_ca_file
    ) as world:
        refused, _ = await world.call(cert=shared_proxy, headers={"X-Remote-Group": "system:masters"})
        bare, _ = await world.call(cert=shared_proxy)
        proxied, body = await world.call(cert=shared_proxy, headers=aggregator_headers())
        alice, alice_body = await world.call(cert=pki.alice)
    assert (refused, bare) == (401, 401)
    assert (proxied, body["name"]) == (200, "bob@example.com")
    assert (alice, alice_body["name"]) == (200, "alice")  # other certificates of the shared CA are still users
