"""The aiohttp middleware: authenticate, authorize, hand the handler `request["user"]`, or answer a Status.

Handlers never see identity headers: X-Remote-* (every header the request-header config reads) and Authorization
are stripped from the request the handler gets, whoever sent them.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography import x509
from multidict import CIMultiDict

from apiserver.auth.authenticate import ANONYMOUS_USER, AuthenticationFailed, Credentials, UnionAuthenticator
from apiserver.auth.authorize import AuthorizationUnavailable, Authorizer, forbidden_error, request_attributes
from apiserver.auth.requestheader import RequestHeaderAuthenticator
from apiserver.auth.user import UserInfo
from apiserver.http.status import internal_error, status_response, unauthorized

log = logging.getLogger(__name__)

USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)


def peer_certificate(request: web.BaseRequest) -> x509.Certificate | None:
    """The client's TLS certificate; the handshake already checked it against the union of our client CAs."""
    transport = request.transport
    ssl_object: Any = transport.get_extra_info("ssl_object") if transport is not None else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    return x509.load_der_x509_certificate(der) if der else None


def _without_identity_headers(request: web.Request, authenticator: UnionAuthenticator) -> CIMultiDict[str]:
    configs = [a.config for a in authenticator.authenticators if isinstance(a, RequestHeaderAuthenticator)]
    return CIMultiDict(
        (name, value)
        for name, value in request.headers.items()
        if name.lower() != "authorization" and not any(c.is_identity_header(name) for c in configs)
    )


def auth_middleware(authenticator: UnionAuthenticator, authorizer: Authorizer) -> Middleware:
    @web.middleware
    async def authenticate_and_authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        user: UserInfo
        try:
            user = await authenticator.authenticate(Credentials(peer_certificate(request), request.headers))
        except AuthenticationFailed as e:
            if not authorizer.is_always_allowed_path(request.path):
                log.info("401 for %s %s: %s", request.method, request.path, e)
                return status_response(unauthorized())
            # health probes (kubelet) carry no credentials; always-allowed paths serve them as anonymous
            user = ANONYMOUS_USER
        attributes = request_attributes(user, request.method, request.path, watch="watch" in request.query)
        try:
            decision = await authorizer.authorize(attributes)
        except AuthorizationUnavailable as e:
            log.error("authorization failed for %s %s: %s", request.method, request.path, e)
            return status_response(internal_error("the authorization check (SubjectAccessReview) failed"))
        if not decision.allowed:
            log.info("403 for user %r %s %s: %s", user.name, request.method, request.path, decision.reason)
            return status_response(forbidden_error(attributes, decision.reason))
        request[USER_KEY] = user  # set before the clone (which copies it) so outer middlewares see it too
        return await handler(request.clone(headers=_without_identity_headers(request, authenticator)))

    return authenticate_and_authorize
