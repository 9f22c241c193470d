"""Client certificates signed by the client CA: user = CN, groups = O, as Kubernetes reads them.

`ClientCertAuthenticator` is also the base of the request-header authenticator, which checks the certificate the
same way and then reads the identity from headers instead of the certificate.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from apiserver.auth.authenticate import AuthenticationFailed, Credentials
from apiserver.auth.trust import CABundleSource, CertificateRejected, ClientCertificateVerifier
from apiserver.machinery.request import UserInfo


class ClientCertAuthenticator:
    label = "client certificate"

    def __init__(self, ca: CABundleSource) -> None:
        self._verifier = ClientCertificateVerifier(ca)

    async def authenticate(self, credentials: Credentials) -> UserInfo | None:
        try:
            certificate = self._verifier.verified(credentials.peer_certificate)
        except CertificateRejected as e:
            raise AuthenticationFailed(f"{self.label}: {e}") from None
        return None if certificate is None else self.identify(certificate, credentials)

    def identify(self, certificate: x509.Certificate, credentials: Credentials) -> UserInfo | None:
        subject = certificate.subject
        common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not common_names or not common_names[0].value:
            return None
        groups = tuple(str(a.value) for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return UserInfo(name=str(common_names[0].value), groups=groups)
