"""Bearer tokens through TokenReview (a test double of kube-apiserver's endpoint), its ~10 s cache, and anonymous."""

from __future__ import annotations

import pytest
from auth_support import AuthWorld, FakeKubeAuthAPI, Pki

from apiserver.auth.authorize import Mode


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def fake_with_carol() -> FakeKubeAuthAPI:
    return FakeKubeAuthAPI(
        tokens={
            "carol-token": {
                "username": "carol",
                "uid": "c-1",
                "groups": ["devs"],
                "extra": {"iam.miloapis.com/parent-type": ["Organization"]},
            }
        }
    )


async def test_token_review_user_and_cache(pki: Pki) -> None:
    fake = fake_with_carol()
    async with AuthWorld(pki, fake, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(headers={"Authorization": "Bearer carol-token"}, data=b'{"spec":{}}')
        assert status == 200
        assert body == {
            "name": "carol",
            "uid": "c-1",
            "groups": ["devs", "system:authenticated"],
            "extra": {"iam.miloapis.com/parent-type": ["Organization"]},
            "identityHeaders": [],  # the token never reaches the handler
            "body": '{"spec":{}}',  # the handler still reads the request body
        }
        assert [r["spec"] for r in fake.token_reviews] == [{"token": "carol-token"}]
        status, body = await world.call(headers={"Authorization": "bearer carol-token"})  # scheme is case-insensitive
        assert (status, body["name"]) == (200, "carol")
        assert len(fake.token_reviews) == 1  # answered from the cache


async def test_refused_token_is_401_and_the_refusal_is_cached(pki: Pki) -> None:
    fake = fake_with_carol()
    async with AuthWorld(pki, fake, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        for _ in range(2):
            status, body = await world.call(headers={"Authorization": "Bearer stolen"})
            # a presented, refused token is 401 even with anonymous access on
            assert (status, body["reason"], body["message"]) == (401, "Unauthorized", "Unauthorized")
        assert len(fake.token_reviews) == 1


async def test_token_review_unreachable_is_401_and_not_cached(pki: Pki) -> None:
    fake = fake_with_carol()
    fake.fail_token_reviews = True
    async with AuthWorld(pki, fake, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, _ = await world.call(headers={"Authorization": "Bearer carol-token"})
        assert status == 401
        calls = len(fake.token_reviews)
        assert calls >= 1
        fake.fail_token_reviews = False
        status, body = await world.call(headers={"Authorization": "Bearer carol-token"})
        assert (status, body["name"]) == (200, "carol")
        assert len(fake.token_reviews) == calls + 1


async def test_client_certificate_wins_over_token(pki: Pki) -> None:
    fake = fake_with_carol()
    async with AuthWorld(pki, fake, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.alice, headers={"Authorization": "Bearer carol-token"})
    assert (status, body["name"]) == (200, "alice")
    assert fake.token_reviews == []


async def test_anonymous_is_off_by_default_and_on_when_enabled(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call()
        assert (status, body["reason"]) == (401, "Unauthorized")
        status, _ = await world.call(headers={"Authorization": "Bearer "})  # an empty token is no credential
        assert status == 401
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        status, body = await world.call()
    assert (status, body["name"], body["groups"]) == (200, "system:anonymous", ["system:unauthenticated"])


async def test_health_paths_answer_without_credentials_even_with_anonymous_off(pki: Pki) -> None:
    fake = FakeKubeAuthAPI()
    async with AuthWorld(pki, fake) as world:
        for path in ("/healthz", "/readyz", "/livez", "/readyz/storage"):
            status, body = await world.call(path, method="GET")
            assert (status, body["name"]) == (200, "system:anonymous"), path
        status, _ = await world.call("/metricsz", method="GET")
        assert status == 401
    assert fake.access_reviews == []
