"""CAs and request-header settings from ConfigMap kube-system/extension-apiserver-authentication, as in a cluster:
used when no flag names them, re-read while serving, and a failed lookup handled as kube does."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from auth_support import AuthWorld, FakeKubeAuthAPI, Pki
from multidict import CIMultiDict

from apiserver.auth.authorize import Mode
from apiserver.auth.configmap import ConfigMapLookupFailed, parse_configmap
from apiserver.auth.delegated import AuthSetupError
from apiserver.machinery.certs import CertificateAuthority

FROM_CONFIGMAP = {
    "client_ca_file": None,
    "requestheader_client_ca_file": None,
    "authorization_mode": Mode.ALWAYS_ALLOW,
    "configmap_poll_interval": 0.05,
}
PROXY_HEADERS = CIMultiDict(
    [("X-Remote-User", "bob"), ("X-Remote-Group", "g"), ("X-Remote-Extra-Iam.miloapis.com%2Fparent-name", "p1")]
)


@pytest.fixture
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


def configmap(pki: Pki, client_ca_pem: bytes | None = None) -> dict[str, str]:
    """As kind/kubeadm clusters publish it."""
    return {
        "client-ca-file": (client_ca_pem or pki.client_ca.cert_pem).decode(),
        "requestheader-client-ca-file": pki.front_proxy_ca.cert_pem.decode(),
        "requestheader-allowed-names": '["front-proxy-client"]',
        "requestheader-username-headers": '["X-Remote-User"]',
        "requestheader-group-headers": '["X-Remote-Group"]',
        "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
        "requestheader-uid-headers": "null",
    }


async def test_configmap_configures_both_cas_and_the_headers(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(configmap=configmap(pki))
    async with AuthWorld(pki, fake, **FROM_CONFIGMAP) as world:
        status, body = await world.call(cert=pki.front_proxy_client, headers=PROXY_HEADERS)
        assert (status, body["name"], body["extra"]) == (200, "bob", {"iam.miloapis.com/parent-name": ["p1"]})
        status, body = await world.call(cert=pki.alice, headers=PROXY_HEADERS)
        assert (status, body["name"]) == (200, "alice")
        status, _ = await world.call(cert=pki.other_proxy, headers=PROXY_HEADERS)  # CN not in the allowed names
        assert status == 401


async def test_rotation_in_the_configmap_is_picked_up_while_serving(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(configmap=configmap(pki))
    new_ca = CertificateAuthority("rotated-client-ca")
    bob = pki.issue(new_ca, "bob", [], "bob-rotated")
    async with AuthWorld(pki, fake, **FROM_CONFIGMAP) as world:
        assert (await world.call(cert=pki.alice))[0] == 200
        fake.configmap = configmap(pki, new_ca.cert_pem)
        async with asyncio.timeout(10):  # a read that started after the change has been applied
            await fake.wait_for_configmap_reads(fake.configmap_reads + 2)
        status, body = await world.call(cert=bob)
        assert (status, body["name"]) == (200, "bob")
        assert (await world.call(cert=pki.alice))[0] == 401


async def test_forbidden_lookup_stops_start_up_unless_tolerated(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(configmap=configmap(pki), configmap_status=403, tokens={"t": {"username": "tina"}})
    with pytest.raises(AuthSetupError, match="extension-apiserver-authentication-reader"):
        async with AuthWorld(pki, fake, **FROM_CONFIGMAP):
            pass
    async with AuthWorld(pki, fake, **FROM_CONFIGMAP, tolerate_lookup_failure=True) as world:
        # no CA is known, so certificates are refused at the handshake; tokens still work
        with pytest.raises(aiohttp.ClientError):
            await world.call(cert=pki.alice)
        status, body = await world.call(headers={"Authorization": "Bearer t"})
        assert (status, body["name"]) == (200, "tina")


async def test_missing_configmap_starts_without_certificate_authentication(pki: Pki) -> None:
    fake = FakeKubeAuthAPI(configmap=None)
    async with AuthWorld(pki, fake, **FROM_CONFIGMAP) as world:
        with pytest.raises(aiohttp.ClientError):
            await world.call(cert=pki.alice)
    assert fake.configmap_reads >= 1


async def test_flags_win_over_the_configmap(pki: Pki) -> None:
    # the client CA comes from the flag (alice's CA); the configmap names another one and is still read for the
    # request-header part the flags leave unset
    fake = FakeKubeAuthAPI(configmap=configmap(pki, CertificateAuthority("other").cert_pem))
    settings = {**FROM_CONFIGMAP, "client_ca_file": pki.client_ca_file}
    async with AuthWorld(pki, fake, **settings) as world:
        assert (await world.call(cert=pki.alice))[0] == 200
        status, body = await world.call(cert=pki.front_proxy_client, headers=PROXY_HEADERS)
        assert (status, body["name"]) == (200, "bob")


def test_configmap_values_are_json_arrays() -> None:
    values = parse_configmap({"requestheader-allowed-names": '["a", "b"]', "requestheader-uid-headers": "null"})
    assert (values.requestheader.allowed_names, values.requestheader.uid_headers) == (("a", "b"), ())
    assert (values.client_ca, values.requestheader_ca) == (None, None)
    with pytest.raises(ConfigMapLookupFailed, match="requestheader-group-headers is not a JSON array of strings"):
        parse_configmap({"requestheader-group-headers": "X-Remote-Group"})
