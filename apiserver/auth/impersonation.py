"""Kubernetes user impersonation (`kubectl --as`), for clients that reach this server directly.

Through the aggregator, kube-apiserver has already done this and removed the headers. A direct caller (`activity
up`, a port-forward) sends them here, and they are handled as the generic apiserver does: each of
`Impersonate-User`, `Impersonate-Group` (repeatable), `Impersonate-Uid` and `Impersonate-Extra-<key>` must be
allowed by a SubjectAccessReview for the verb `impersonate` on users (or serviceaccounts) / groups / uids /
userextras (subresource = the extra key), asked as the authenticated caller. Then the request is authorized and
scoped (tenant extras) as the impersonated user alone: none of the caller's groups or extras carry over.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from types import MappingProxyType

from multidict import MultiMapping

from apiserver.auth.authorize import Attributes, Authorizer
from apiserver.auth.requestheader import extra_key
from apiserver.machinery.request import ANONYMOUS, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
VERB = "impersonate"
AUTHENTICATION_GROUP = "authentication.k8s.io"  # the API group of userextras and uids; users and groups are core
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class ImpersonationInvalid(Exception):
    """The headers ask for something impersonation cannot mean (answer 400; the message says what to send).
    kube-apiserver answers these with a 500; the mistake is the client's, so it is a 4xx here."""


class ImpersonationDenied(Exception):
    """The caller may not impersonate `attributes.name`; `reason` is the authorizer's."""

    def __init__(self, attributes: Attributes, reason: str) -> None:
        super().__init__(f"{attributes.resource} {attributes.name!r}: {reason}")
        self.attributes = attributes
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """One thing to impersonate, in the authorizer's terms."""

    resource: str
    name: str
    api_group: str = ""
    namespace: str = ""
    subresource: str = ""


def is_impersonation_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in (USER_HEADER.lower(), GROUP_HEADER.lower(), UID_HEADER.lower()) or lowered.startswith(
        EXTRA_PREFIX.lower()
    )


def _service_account(name: str) -> tuple[str, str] | None:
    """(namespace, name) of `system:serviceaccount:NS:NAME` when both parts are valid names, as Kubernetes splits it."""
    if not name.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = name[len(SERVICE_ACCOUNT_PREFIX) :].split(":")
    if len(parts) != 2:
        return None
    namespace, account = parts
    if len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
        return None
    if len(account) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(account):
        return None
    return namespace, account


def requested_targets(headers: MultiMapping[str]) -> list[Target]:
    """What the headers ask to impersonate, in Kubernetes' order (user, groups, extras, uid); empty for none."""
    targets: list[Target] = []
    user = headers.get(USER_HEADER, "")
    if user:
        account = _service_account(user)
        if account is not None:
            targets.append(Target("serviceaccounts", account[1], namespace=account[0]))
        else:
            targets.append(Target("users", user))
    others = [Target("groups", group) for group in headers.getall(GROUP_HEADER, ())]
    for header, value in headers.items():
        if header.lower().startswith(EXTRA_PREFIX.lower()):
            key = extra_key(header[len(EXTRA_PREFIX) :])
            others.append(Target("userextras", value, AUTHENTICATION_GROUP, subresource=key))
    uid = headers.get(UID_HEADER, "")
    if uid:
        others.append(Target("uids", uid, AUTHENTICATION_GROUP))
    if others and not user:
        asked = sorted({_header_of(t) for t in others})
        raise ImpersonationInvalid(
            f"{', '.join(asked)} sent without {USER_HEADER}: impersonation needs the user to act as "
            f"(kubectl --as=USER, with --as-group, --as-uid or --as-user-extra)"
        )
    return targets + others


def _header_of(target: Target) -> str:
    if target.resource == "groups":
        return GROUP_HEADER
    if target.resource == "uids":
        return UID_HEADER
    return f"{EXTRA_PREFIX}{target.subresource}"


def _attributes(requestor: UserInfo, target: Target, path: str) -> Attributes:
    return Attributes(
        user=requestor,
        verb=VERB,
        path=path,
        resource_request=True,
        api_group=target.api_group,
        api_version="v1",
        resource=target.resource,
        subresource=target.subresource,
        namespace=target.namespace,
        name=target.name,
    )


def _impersonated(targets: list[Target], groups_given: bool) -> UserInfo:
    name, uid = "", ""
    groups: list[str] = []
    extra: defaultdict[str, list[str]] = defaultdict(list)
    for target in targets:
        if target.resource == "users":
            name = target.name
        elif target.resource == "serviceaccounts":
            name = f"{SERVICE_ACCOUNT_PREFIX}{target.namespace}:{target.name}"
            if not groups_given:  # a service account's groups are known; given groups replace them
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{target.namespace}"]
        elif target.resource == "groups":
            groups.append(target.name)
        elif target.resource == "userextras":
            extra[target.subresource].append(target.name)
        else:
            uid = target.name
    # as Kubernetes: everyone but anonymous is system:authenticated unless the caller chose
    # system:unauthenticated; anonymous is system:unauthenticated
    if name != ANONYMOUS:
        if AUTHENTICATED_GROUP not in groups and UNAUTHENTICATED_GROUP not in groups:
            groups.append(AUTHENTICATED_GROUP)
    elif UNAUTHENTICATED_GROUP not in groups:
        groups.append(UNAUTHENTICATED_GROUP)
    return UserInfo(name, uid, tuple(groups), MappingProxyType({k: tuple(v) for k, v in extra.items()}))


async def impersonate(requestor: UserInfo, headers: MultiMapping[str], authorizer: Authorizer, path: str) -> UserInfo:
    """The user to act as: `requestor` itself without impersonation headers. Raises ImpersonationInvalid (400),
    ImpersonationDenied (403) at the first target not allowed, or AuthorizationUnavailable (500)."""
    targets = requested_targets(headers)
    if not targets:
        return requestor
    for target in targets:
        attributes = _attributes(requestor, target, path)
        decision = await authorizer.authorize(attributes)
        if not decision.allowed:
            raise ImpersonationDenied(attributes, decision.reason)
    return _impersonated(targets, groups_given=bool(headers.getall(GROUP_HEADER, ())))
