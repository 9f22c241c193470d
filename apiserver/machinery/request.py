"""Who is calling, as the request carries it: authentication sets it, authorization, logs and resources read it.

It lives in the lowest layer so the HTTP machinery and auth both import it downward."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from aiohttp import web

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
AUTHENTICATED_GROUP = "system:authenticated"
MASTERS_GROUP = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    # user extras, keys lower-case as Kubernetes normalises them, e.g. "iam.miloapis.com/parent-type"
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))


USER_KEY: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)
# the authenticated caller, when it acts as USER_KEY's user by impersonation
IMPERSONATOR_KEY: web.RequestKey[UserInfo] = web.RequestKey("impersonator", UserInfo)
