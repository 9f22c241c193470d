"""May this user do this? Delegated to kube-apiserver with a SubjectAccessReview, as every aggregated server does.

Request attributes follow kube-apiserver's request-info rules, so RBAC rules written for any Kubernetes API work
here: `/apis`, `/apis/<group>` and `/apis/<group>/<version>` (discovery) are non-resource URLs (granted to
everyone by the `system:discovery` ClusterRole); `/apis/<group>/<version>/<resource>[/<name>[/<sub>]]` is a
resource request whose verb comes from the HTTP method (POST = create, GET = get or list, ...).
Always-allowed paths and the `system:masters` group skip the review; allow and deny answers are cached briefly.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import TLRUCache

from apiserver.auth.kubeclient import KubeAPIError, KubeClient
from apiserver.machinery.request import MASTERS_GROUP, UserInfo
from apiserver.machinery.status import ApiError, forbidden, forbidden_path

log = logging.getLogger(__name__)

PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
MAX_CACHED = 4096  # decisions kept, least recently used dropped first
ALLOW_TTL_SECONDS = 10.0  # kube's --authorization-webhook-cache-authorized-ttl for delegated servers
DENY_TTL_SECONDS = 10.0  # kube's --authorization-webhook-cache-unauthorized-ttl
# kube's defaults are the three exact paths; sub-paths (/readyz/<check>) too, since probes and people use them
DEFAULT_ALWAYS_ALLOW_PATHS = ("/healthz", "/healthz/*", "/readyz", "/readyz/*", "/livez", "/livez/*")

_API_PREFIXES = {"api", "apis"}
_METHOD_VERBS = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_NAMESPACE_SUBRESOURCES = {"status", "finalize"}


class Mode(enum.StrEnum):
    DELEGATED = "Delegated"
    ALWAYS_ALLOW = "AlwaysAllow"


class AuthorizationUnavailable(Exception):
    """The SubjectAccessReview could not be made; the message is for logs (answer 500 without it)."""


@dataclass(frozen=True)
class Attributes:
    """What is asked, in Kubernetes' authorizer vocabulary."""

    user: UserInfo
    verb: str
    path: str
    resource_request: bool = False
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def request_attributes(user: UserInfo, method: str, path: str, watch: bool = False) -> Attributes:
    """kube-apiserver's RequestInfoFactory for the /api and /apis prefixes (no special verbs: none served here)."""
    parts = [p for p in path.strip("/").split("/") if p] if path.strip("/") else []
    non_resource = Attributes(user=user, verb=method.lower(), path=path)
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return non_resource
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(rest) < 3:
            return non_resource
        group, rest = rest[0], rest[1:]
    version, rest = rest[0], rest[1:]
    verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if watch else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        user=user,
        verb=verb,
        path=path,
        resource_request=True,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
    )


def forbidden_error(attributes: Attributes, reason: str) -> ApiError:
    """403 worded exactly as kube-apiserver words it (kubectl shows it as `Error from server (Forbidden): ...`)."""
    user, verb = attributes.user.name, attributes.verb
    if not attributes.resource_request:
        base = forbidden_path(user, verb, attributes.path)
        return ApiError(base.code, base.reason, base.message + (f": {reason}" if reason else ""), base.details)
    resource = attributes.resource + (f"/{attributes.subresource}" if attributes.subresource else "")
    if not attributes.namespace and not attributes.name:
        return forbidden(user, verb, resource, attributes.api_group, reason)
    qualified = f"{attributes.resource}.{attributes.api_group}" if attributes.api_group else attributes.resource
    subject = f'{qualified} "{attributes.name}"' if attributes.name else qualified
    scope = f'in the namespace "{attributes.namespace}"' if attributes.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "{attributes.api_group}" {scope}'
    )
    details = {"group": attributes.api_group, "kind": attributes.resource, "name": attributes.name}
    return ApiError(403, "Forbidden", message + (f": {reason}" if reason else ""), details)


class PathMatcher:
    """kube's --authorization-always-allow-paths: exact paths, or prefixes written with one trailing `*`."""

    def __init__(self, patterns: Sequence[str]) -> None:
        exact: set[str] = set()
        prefixes: list[str] = []
        for pattern in patterns:
            stripped = pattern.lstrip("/")
            if "*" in stripped[:-1]:
                raise ValueError(f"always-allow path {pattern!r}: only a trailing * is allowed")
            if stripped.endswith("*"):
                prefixes.append(stripped[:-1])
            else:
                exact.add(stripped)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def matches(self, path: str) -> bool:
        stripped = path.lstrip("/")
        return stripped in self._exact or stripped.startswith(self._prefixes)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _review_spec(attributes: Attributes) -> dict[str, Any]:
    user = attributes.user
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    if attributes.resource_request:
        spec["resourceAttributes"] = {
            k: v  # omitempty, as client-go serialises them
            for k, v in {
                "namespace": attributes.namespace,
                "verb": attributes.verb,
                "group": attributes.api_group,
                "version": attributes.api_version,
                "resource": attributes.resource,
                "subresource": attributes.subresource,
                "name": attributes.name,
            }.items()
            if v
        }
    else:
        spec["nonResourceAttributes"] = {"path": attributes.path, "verb": attributes.verb}
    return spec


class SubjectAccessReviewer:
    def __init__(self, client: KubeClient, allow_ttl: float = ALLOW_TTL_SECONDS, deny_ttl: float = DENY_TTL_SECONDS):
        self._client = client
        self._allow_ttl = allow_ttl
        self._deny_ttl = deny_ttl
        # an allow and a deny live for different times: the entry's own time to use
        self._cache: TLRUCache[str, Decision] = TLRUCache(MAX_CACHED, self._expiry)

    async def review(self, attributes: Attributes) -> Decision:
        spec = _review_spec(attributes)
        key = hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        try:
            review = await self._client.create(PATH, body)
        except KubeAPIError as e:
            raise AuthorizationUnavailable(f"SubjectAccessReview failed: {e}") from None
        status = review.get("status") or {}
        decision = Decision(allowed=bool(status.get("allowed")), reason=str(status.get("reason") or ""))
        if (self._allow_ttl if decision.allowed else self._deny_ttl) > 0:
            self._cache[key] = decision
        return decision

    def _expiry(self, _key: str, decision: Decision, now: float) -> float:
        return now + (self._allow_ttl if decision.allowed else self._deny_ttl)


class Authorizer:
    """Always-allowed paths, then system:masters, then the SubjectAccessReview (denied if none is configured)."""

    def __init__(
        self,
        mode: Mode = Mode.DELEGATED,
        always_allow_paths: Sequence[str] = DEFAULT_ALWAYS_ALLOW_PATHS,
        reviewer: SubjectAccessReviewer | None = None,
    ) -> None:
        self.mode = mode
        self.always_allow = PathMatcher(always_allow_paths)
        self._reviewer = reviewer

    def is_always_allowed_path(self, path: str) -> bool:
        return self.always_allow.matches(path)

    async def authorize(self, attributes: Attributes) -> Decision:
        """The decision, or AuthorizationUnavailable (answer 500)."""
        if self.mode is Mode.ALWAYS_ALLOW:
            return Decision(True)
        if not attributes.resource_request and self.always_allow.matches(attributes.path):
            return Decision(True)
        if MASTERS_GROUP in attributes.user.groups:
            return Decision(True)
        if self._reviewer is None:
            return Decision(False, "no SubjectAccessReview endpoint configured (--authorization-kubeconfig)")
        return await self._reviewer.review(attributes)
