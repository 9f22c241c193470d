"""CA bundles that client certificates are checked against, and the check itself.

A bundle comes from a file (re-read when it changes, so a rotated CA is trusted without a restart) or from the
`extension-apiserver-authentication` ConfigMap (replaced by its poller). Verification uses cryptography's
X.509 path builder with Kubernetes' rules rather than the Web PKI profile: kube CAs issue client certificates
without subjectAltName or authorityKeyIdentifier, which Web PKI would reject. Kept: the chain must reach a CA of
the bundle, every issuer must be a CA (basicConstraints), validity periods and signatures hold, and the leaf must
carry ExtKeyUsage clientAuth (or anyExtendedKeyUsage).
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cachetools import TTLCache
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID

log = logging.getLogger(__name__)

VERIFIED_TTL_SECONDS = 10.0
MAX_CACHED_VERIFICATIONS = 4096
# How often a CA file may be stat()ed. A stat costs ~3 us here and runs at TLS handshakes and authentications;
# the limit only keeps a connection storm from turning into a syscall storm. Rotation is seen within a second.
FILE_CHECK_INTERVAL_SECONDS = 1.0


class CertificateRejected(Exception):
    """The peer certificate does not verify against the bundle; the message says why (for logs)."""


@dataclass(frozen=True)
class TrustBundle:
    pem: bytes
    certificates: tuple[x509.Certificate, ...]
    source: str
    fingerprint: str  # SHA-256 of the PEM: identifies this version of the bundle


def parse_bundle(pem: bytes, source: str) -> TrustBundle:
    """Raise ValueError (saying what is wrong with `source`) unless it holds at least one PEM certificate."""
    try:
        certificates = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as e:
        raise ValueError(f"{source}: not a PEM certificate bundle ({e})") from None
    return TrustBundle(pem, certificates, source, hashlib.sha256(pem).hexdigest())


class CABundleSource(Protocol):
    def current(self) -> TrustBundle | None: ...


class SettableCABundle:
    """A bundle set by its owner (the ConfigMap poller); None until set."""

    def __init__(self, bundle: TrustBundle | None = None) -> None:
        self._bundle = bundle

    def set(self, bundle: TrustBundle | None) -> None:
        self._bundle = bundle

    def current(self) -> TrustBundle | None:
        return self._bundle


class FileCABundle:
    """A PEM file, re-read when its (inode, size, mtime) changes. A broken rewrite keeps the last good bundle."""

    def __init__(self, path: Path, check_interval: float = FILE_CHECK_INTERVAL_SECONDS) -> None:
        self.path = path
        self._interval = check_interval
        self._checked_at = float("-inf")
        self._stat: tuple[int, int, int] | None = None
        self._bundle = parse_bundle(path.read_bytes(), str(path))  # fail at start-up, not at the first request

    def current(self) -> TrustBundle:
        now = time.monotonic()
        if now - self._checked_at >= self._interval:
            self._checked_at = now
            self._reload_if_changed()
        return self._bundle

    def _reload_if_changed(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError as e:
            log.warning("CA file %s unreadable, keeping the previous bundle: %s", self.path, e)
            return
        signature = (st.st_ino, st.st_size, st.st_mtime_ns)
        if signature == self._stat:
            return
        try:
            bundle = parse_bundle(self.path.read_bytes(), str(self.path))
        except (OSError, ValueError) as e:
            log.warning("CA file %s changed but is not usable yet, keeping the previous bundle: %s", self.path, e)
            return
        self._stat = signature
        if bundle.pem != self._bundle.pem:
            log.info("CA file %s reloaded (%d certificates)", self.path, len(bundle.certificates))
        self._bundle = bundle


def _must_be_ca(policy: verification.Policy, cert: x509.Certificate, ext: x509.BasicConstraints | None) -> None:
    if ext is None or not ext.ca:
        raise ValueError("issuer is not a CA (basicConstraints CA:FALSE)")


def _must_allow_client_auth(
    policy: verification.Policy, cert: x509.Certificate, ext: x509.ExtendedKeyUsage | None
) -> None:
    if ext is None or not {ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE} & set(ext):
        raise ValueError("certificate is not valid for client authentication (ExtKeyUsage lacks clientAuth)")


_CA_POLICY = verification.ExtensionPolicy.permit_all().require_present(
    x509.BasicConstraints, verification.Criticality.AGNOSTIC, _must_be_ca
)
_LEAF_POLICY = verification.ExtensionPolicy.permit_all().require_present(
    x509.ExtendedKeyUsage, verification.Criticality.AGNOSTIC, _must_allow_client_auth
)


class ClientCertificateVerifier:
    """Checks peer certificates against the current bundle of a CA source, remembering successes briefly.

    A chain check costs ~0.3 ms here and the front proxy presents the same certificate on every request, so a
    verified (bundle version, certificate) pair is trusted for VERIFIED_TTL_SECONDS, and never past its notAfter.
    A rotated bundle has a new fingerprint, so it is checked afresh.
    """

    def __init__(self, ca: CABundleSource, ttl: float = VERIFIED_TTL_SECONDS) -> None:
        self._ca = ca
        self._ttl = ttl
        self._verified: TTLCache[str, bool] = TTLCache(MAX_CACHED_VERIFICATIONS, ttl)

    def verified(self, certificate: x509.Certificate | None) -> x509.Certificate | None:
        """The certificate if it verifies; None if there is none or no bundle; CertificateRejected otherwise."""
        bundle = self._ca.current()
        if certificate is None or bundle is None:
            return None
        self._verify(bundle, certificate)
        return certificate

    def _verify(self, bundle: TrustBundle, leaf: x509.Certificate) -> None:
        """Raise CertificateRejected unless `leaf` chains to a CA of `bundle` and may be used for client auth.

        Python's ssl only hands over the peer's leaf, so intermediates must be in the bundle (they act as anchors).
        """
        now = datetime.datetime.now(datetime.UTC)
        key = bundle.fingerprint + leaf.fingerprint(hashes.SHA256()).hex()
        if self._verified.get(key) and now < leaf.not_valid_after_utc:
            return
        verifier = (
            verification.PolicyBuilder()
            .store(verification.Store(list(bundle.certificates)))
            .time(now)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_LEAF_POLICY)
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, [])
        except verification.VerificationError as e:
            raise CertificateRejected(f"{leaf.subject.rfc4514_string()} not verified by {bundle.source}: {e}") from None
        if self._ttl > 0:
            self._verified[key] = True
