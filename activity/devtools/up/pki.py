"""The local certificates: a CA, the API server's serving certificate and the kubeconfig user's client
certificate, generated into DIR/pki on the first run and reused afterwards (so a kubeconfig copied elsewhere keeps
working across restarts). The CA's private key is never written: nothing can mint further certificates later;
when a certificate nears its end or a file is missing, the whole set is generated again.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from apiserver.machinery.certs import CertificateAuthority
from apiserver.server.options import SELF_SIGNED_HOSTS

USER = "activity-admin"
GROUPS = ("system:masters",)
RENEW_BEFORE = datetime.timedelta(days=30)


@dataclass(frozen=True)
class LocalPki:
    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def serving_cert(self) -> Path:
        return self.directory / "serving.crt"

    @property
    def serving_key(self) -> Path:
        return self.directory / "serving.key"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.crt"

    @property
    def client_key(self) -> Path:
        return self.directory / "client.key"

    @property
    def cursor_key(self) -> Path:
        """Signs continue tokens: kept, so a next-page command still works after a restart."""
        return self.directory / "cursor.key"

    @property
    def redaction_key(self) -> Path:
        """Keys the markers that replace credentials: kept apart from the certificates and never renewed with
        them, since a new key makes every redacted value look changed."""
        return self.directory / "redaction.key"

    def ensure_redaction_key(self) -> bytes:
        if not self.redaction_key.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            self.redaction_key.touch(mode=0o600)
            self.redaction_key.write_text(secrets.token_hex(32) + "\n")
        return self.redaction_key.read_bytes().strip()

    def _files(self) -> tuple[Path, ...]:
        return (self.ca_cert, self.serving_cert, self.serving_key, self.client_cert, self.client_key, self.cursor_key)

    def usable(self, now: datetime.datetime | None = None) -> bool:
        """Every file is there, both leaves were issued by the CA, and none of the three expires soon."""
        if not all(path.is_file() for path in self._files()):
            return False
        try:
            ca = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
            leaves = [x509.load_pem_x509_certificate(p.read_bytes()) for p in (self.serving_cert, self.client_cert)]
            for leaf in leaves:
                leaf.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            return False
        horizon = (now or datetime.datetime.now(datetime.UTC)) + RENEW_BEFORE
        return all(cert.not_valid_after_utc > horizon for cert in (ca, *leaves))

    def generate(self) -> None:
        ca = CertificateAuthority("activity-up-ca")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ca_cert.write_bytes(ca.cert_pem)
        ca.issue_serving(SELF_SIGNED_HOSTS).write(self.directory, "serving")
        ca.issue_client(USER, GROUPS).write(self.directory, "client")
        self.cursor_key.touch(mode=0o600)
        self.cursor_key.write_text(secrets.token_hex(32) + "\n")

    def ensure(self) -> bool:
        """Make the set usable; True when it was (re)generated."""
        if self.usable():
            return False
        self.generate()
        return True
