"""Client-certificate authentication over real TLS: CN/O mapping, untrusted or unfit certificates refused, and a
CA rotated on disk trusted without a restart."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import aiohttp
import pytest
from auth_support import AuthWorld, Pki
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apiserver.auth.authorize import Mode
from apiserver.machinery.certs import CertificateAuthority


@pytest.fixture
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"))


async def test_user_is_the_cn_and_groups_are_the_os(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.alice)
    assert status == 200
    assert (body["name"], body["groups"]) == ("alice", ["dev", "ops", "system:authenticated"])


async def test_certificate_from_an_untrusted_ca_never_authenticates(pki: Pki) -> None:
    # mallory's certificate claims system:masters; the handshake itself refuses an unknown CA
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        with pytest.raises(aiohttp.ClientError):
            await world.call(cert=pki.wrong)
        status, body = await world.call()  # the server is still fine for others
    assert (status, body["name"]) == (200, "system:anonymous")


async def test_certificate_for_servers_only_is_refused(pki: Pki) -> None:
    # ExtKeyUsage serverAuth only: OpenSSL's client purpose check already ends the handshake
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        with pytest.raises(aiohttp.ClientError):
            await world.call(cert=pki.no_client_auth)


async def test_certificate_without_ext_key_usage_is_refused(pki: Pki, tmp_path: Path) -> None:
    """OpenSSL lets a certificate without ExtKeyUsage through the handshake; authentication requires clientAuth."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bare-ca")])
    now = datetime.datetime.now(datetime.UTC)

    def certificate(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256())
        )

    ca_cert = certificate(ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "no-eku")]), leaf_key, ca=False)
    cert_file, key_file = tmp_path / "no-eku.crt", tmp_path / "no-eku.key"
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # a bundle of two CAs: alice's and the bare one
    pki.client_ca_file.write_bytes(pki.client_ca.cert_pem + ca_cert.public_bytes(serialization.Encoding.PEM))
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW, anonymous=True) as world:
        status, body = await world.call(cert=(cert_file, key_file))
        assert (status, body["reason"]) == (401, "Unauthorized")  # presented and rejected: no anonymous fallback
        status, body = await world.call(cert=pki.alice)
        assert (status, body["name"]) == (200, "alice")


async def test_rotated_client_ca_is_trusted_without_restart(pki: Pki) -> None:
    new_ca = CertificateAuthority("test-client-ca-2")
    bob = pki.issue(new_ca, "bob", ["qa"], "bob")
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        status, body = await world.call(cert=pki.alice)
        assert (status, body["name"]) == (200, "alice")
        with pytest.raises(aiohttp.ClientError):  # not trusted yet
            await world.call(cert=bob)

        # rotate as kubelet updates a mounted Secret: write a new file, rename it over the old one
        staged = pki.client_ca_file.with_suffix(".new")
        staged.write_bytes(new_ca.cert_pem)
        os.replace(staged, pki.client_ca_file)

        status, body = await world.call(cert=bob)
        assert (status, body["name"], body["groups"]) == (200, "bob", ["qa", "system:authenticated"])
        status, _ = await world.call(cert=pki.alice)  # the old CA is gone from the bundle
        assert status == 401


async def test_a_broken_rewrite_of_the_ca_file_keeps_the_last_good_bundle(pki: Pki) -> None:
    async with AuthWorld(pki, authorization_mode=Mode.ALWAYS_ALLOW) as world:
        pki.client_ca_file.write_bytes(b"-----BEGIN CERTIFICATE-----\ntruncated")
        status, body = await world.call(cert=pki.alice)
    assert (status, body["name"]) == (200, "alice")
