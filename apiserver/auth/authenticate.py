"""Who is calling: try each authenticator in Kubernetes' order and combine their answers like kube's union.

Each authenticator returns a user, None ("these credentials are not mine to judge"), or raises
AuthenticationFailed ("these credentials are mine and they are bad"). The first user wins; if none, any failure
means 401 even when anonymous access is on (kube's fail-on-error), otherwise anonymous if enabled, else 401.
AuthenticationRefused is final: no later authenticator may serve the request under another identity.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509
from multidict import MultiMapping

from apiserver.machinery.request import ANONYMOUS, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo

log = logging.getLogger(__name__)

ANONYMOUS_USER = UserInfo(ANONYMOUS, groups=(UNAUTHENTICATED_GROUP,))


class AuthenticationFailed(Exception):
    """Credentials were presented and rejected; the message is for logs (never echoed to the caller)."""


class AuthenticationRefused(AuthenticationFailed):
    """Credentials that must not fall through to another authenticator (answer 401 at once)."""


@dataclass(frozen=True)
class Credentials:
    """What a request presents: the TLS peer certificate (already accepted by the handshake) and its headers."""

    peer_certificate: x509.Certificate | None
    headers: MultiMapping[str]

    @property
    def bearer_token(self) -> str | None:
        """`Authorization: Bearer <token>` as kube reads it: case-insensitive scheme, no empty tokens."""
        parts = self.headers.get("Authorization", "").strip().split(" ", 2)
        if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
            return None
        return parts[1]


class Authenticator(Protocol):
    async def authenticate(self, credentials: Credentials) -> UserInfo | None: ...


def with_authenticated_group(user: UserInfo) -> UserInfo:
    if AUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.name, user.uid, (*user.groups, AUTHENTICATED_GROUP), user.extra)


class UnionAuthenticator:
    def __init__(self, authenticators: Sequence[Authenticator], anonymous: bool = False) -> None:
        self.authenticators = tuple(authenticators)
        self.anonymous = anonymous

    async def authenticate(self, credentials: Credentials) -> UserInfo:
        """The caller's identity, or AuthenticationFailed (answer 401)."""
        failures: list[str] = []
        for authenticator in self.authenticators:
            try:
                user = await authenticator.authenticate(credentials)
            except AuthenticationRefused:
                raise
            except AuthenticationFailed as e:
                failures.append(str(e))
                continue
            if user is not None:
                return with_authenticated_group(user)
        if failures:
            raise AuthenticationFailed("; ".join(failures))
        if self.anonymous:
            return ANONYMOUS_USER
        raise AuthenticationFailed("no credentials presented and anonymous access is disabled")
