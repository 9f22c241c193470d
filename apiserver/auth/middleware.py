"""The aiohttp middleware: authenticate, impersonate (Impersonate-* headers), authorize, hand the handler
`request["user"]`, or answer a Status.

Handlers never see identity headers: X-Remote-* (every header the request-header config reads), Impersonate-* and
Authorization are stripped from the request the handler gets, whoever sent them. Every 401 and 403 is logged with
who asked (never a credential), what they asked in the authorizer's terms, and why it was refused.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from cryptography import x509
from multidict import CIMultiDict

from apiserver.auth.authenticate import ANONYMOUS_USER, AuthenticationFailed, Credentials, UnionAuthenticator
from apiserver.auth.authorize import (
    Attributes,
    AuthorizationUnavailable,
    Authorizer,
    forbidden_error,
    request_attributes,
)
from apiserver.auth.impersonation import ImpersonationDenied, ImpersonationInvalid, impersonate, is_impersonation_header
from apiserver.auth.requestheader import RequestHeaderAuthenticator
from apiserver.machinery.request import IMPERSONATOR_KEY, USER_KEY, UserInfo
from apiserver.machinery.status import bad_request, internal_error, status_response, unauthorized

log = logging.getLogger(__name__)

NO_REASON = "no rule allows it (the authorizer gave no reason)"


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
        if name.lower() != "authorization"
        and not is_impersonation_header(name)
        and not any(c.is_identity_header(name) for c in configs)
    )


def _presented(credentials: Credentials) -> str:
    """What a refused caller showed, for the log: the kind of credential, never the credential itself."""
    if credentials.bearer_token is not None:
        return "a bearer token"
    if credentials.peer_certificate is not None:
        return f"a client certificate for {credentials.peer_certificate.subject.rfc4514_string()}"
    return "no credentials"


def _asked(attributes: Attributes) -> str:
    """The request in the authorizer's terms: `create auditlogqueries.activity.miloapis.com` or `get path /x`."""
    if not attributes.resource_request:
        return f"{attributes.verb} path {attributes.path}"
    resource = attributes.resource + (f"/{attributes.subresource}" if attributes.subresource else "")
    qualified = f"{resource}.{attributes.api_group}" if attributes.api_group else resource
    named = f" {attributes.name!r}" if attributes.name else ""
    where = f" in namespace {attributes.namespace}" if attributes.namespace else ""
    return f"{attributes.verb} {qualified}{named}{where}"


def _log_denied(attributes: Attributes, reason: str, impersonator: UserInfo | None = None) -> None:
    user = attributes.user
    acting = f" (impersonated by {impersonator.name!r})" if impersonator is not None else ""
    log.info(
        "403 Forbidden: user %r%s in groups %s may not %s: %s",
        user.name,
        acting,
        list(user.groups),
        _asked(attributes),
        reason or NO_REASON,
        extra={
            "status": 403,
            "user": user.name,
            "groups": list(user.groups),
            "impersonator": impersonator.name if impersonator is not None else "",
            "verb": attributes.verb,
            "resource": attributes.resource if attributes.resource_request else "",
            "path": attributes.path,
            "reason": reason or NO_REASON,
        },
    )


def auth_middleware(authenticator: UnionAuthenticator, authorizer: Authorizer) -> Middleware:
    @web.middleware
    async def authenticate_and_authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        user: UserInfo
        credentials = Credentials(peer_certificate(request), request.headers)
        try:
            user = await authenticator.authenticate(credentials)
        except AuthenticationFailed as e:
            if not authorizer.is_always_allowed_path(request.path):
                asked = _asked(request_attributes(ANONYMOUS_USER, request.method, request.path))
                log.info(
                    "401 Unauthorized: a caller with %s may not %s: %s",
                    _presented(credentials),
                    asked,
                    e,
                    extra={"status": 401, "method": request.method, "path": request.path, "reason": str(e)},
                )
                return status_response(unauthorized())
            # health probes (kubelet) carry no credentials; always-allowed paths serve them as anonymous
            user = ANONYMOUS_USER
        # set before the clone (which copies it) so outer middlewares and the access log see it too
        request[USER_KEY] = user
        try:
            acting = await impersonate(user, request.headers, authorizer, request.path)
            impersonator = None
            if acting is not user:
                impersonator = request[IMPERSONATOR_KEY] = user
                request[USER_KEY] = acting
            attributes = request_attributes(acting, request.method, request.path, watch="watch" in request.query)
            decision = await authorizer.authorize(attributes)
        except ImpersonationInvalid as e:
            log.info("400 for user %r %s %s: %s", user.name, request.method, request.path, e)
            return status_response(bad_request(str(e)))
        except ImpersonationDenied as e:
            _log_denied(e.attributes, e.reason)
            return status_response(forbidden_error(e.attributes, e.reason))
        except AuthorizationUnavailable as e:
            log.error("authorization failed for %s %s: %s", request.method, request.path, e)
            return status_response(internal_error("the authorization check (SubjectAccessReview) failed"))
        if not decision.allowed:
            _log_denied(attributes, decision.reason, impersonator)
            return status_response(forbidden_error(attributes, decision.reason))
        return await handler(request.clone(headers=_without_identity_headers(request, authenticator)))

    return authenticate_and_authorize
