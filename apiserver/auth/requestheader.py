"""The front proxy (kube-apiserver's aggregator) says who the user is in X-Remote-* headers.

Those headers are believed only from a caller whose TLS certificate chains to the request-header CA, carries
clientAuth, and whose CN is an allowed name. From anyone else they mean nothing (and the middleware strips them).
A certificate with an allowed name but no user header is refused (401): it is never a user of its own.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from multidict import MultiMapping

from apiserver.auth.authenticate import AuthenticationFailed, AuthenticationRefused, Credentials
from apiserver.auth.clientcert import ClientCertAuthenticator
from apiserver.auth.trust import CABundleSource
from apiserver.machinery.request import UserInfo

_MALFORMED_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class RequestHeaderConfig:
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)
    extra_headers_prefixes: tuple[str, ...] = ("X-Remote-Extra-",)
    uid_headers: tuple[str, ...] = ()
    allowed_names: tuple[str, ...] = ()  # CNs allowed to act as front proxy; empty = any CN the CA signed

    def is_identity_header(self, name: str) -> bool:
        """True for every header this config reads: the ones to strip before a handler sees the request."""
        lowered = name.lower()
        exact = (*self.username_headers, *self.group_headers, *self.uid_headers)
        return any(lowered == h.lower() for h in exact) or any(
            lowered.startswith(p.lower()) for p in self.extra_headers_prefixes
        )


def _first(headers: MultiMapping[str], names: Sequence[str]) -> str:
    for name in names:
        value = headers.get(name, "")
        if value:
            return value
    return ""


def extra_key(encoded: str) -> str:
    """Header suffix lower-cased, then percent-decoded; kept as-is when the escapes are malformed (as kube does)."""
    lowered = encoded.lower()
    if _MALFORMED_ESCAPE.search(lowered):
        return lowered
    try:
        return unquote(lowered, errors="strict")
    except UnicodeDecodeError:
        return lowered


def user_from_headers(headers: MultiMapping[str], config: RequestHeaderConfig) -> UserInfo | None:
    name = _first(headers, config.username_headers)
    if not name:
        return None
    groups = tuple(v for header in config.group_headers for v in headers.getall(header, ()) if v)
    extra: defaultdict[str, list[str]] = defaultdict(list)
    for prefix in config.extra_headers_prefixes:  # prefixes first, so values keep the configured order
        for header, value in headers.items():
            if header.lower().startswith(prefix.lower()):
                extra[extra_key(header[len(prefix) :])].append(value)
    return UserInfo(
        name=name,
        uid=_first(headers, config.uid_headers),
        groups=groups,
        extra=MappingProxyType({k: tuple(v) for k, v in extra.items()}),
    )


class RequestHeaderAuthenticator(ClientCertAuthenticator):
    """`config` may be replaced while serving (the ConfigMap watcher does, when the cluster changes it)."""

    label = "request-header"

    def __init__(self, ca: CABundleSource, config: RequestHeaderConfig) -> None:
        super().__init__(ca)
        self.config = config

    def identify(self, certificate: x509.Certificate, credentials: Credentials) -> UserInfo | None:
        config = self.config
        if config.allowed_names:
            common_names = [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            if not any(cn in config.allowed_names for cn in common_names):
                raise AuthenticationFailed(
                    f"request-header: client certificate CN {common_names} is not in the allowed names "
                    f"{list(config.allowed_names)}"
                )
        user = user_from_headers(credentials.headers, config)
        if user is None and config.allowed_names:
            # The aggregator always names the user it proxies for. Without one, the proxy's own certificate would
            # be served as a user of its own (unscoped: every tenant), if the client CA also signed it.
            raise AuthenticationRefused(
                f"request-header: the front-proxy certificate {certificate.subject.rfc4514_string()} came without "
                f"a user in {', '.join(config.username_headers)}"
            )
        return user
