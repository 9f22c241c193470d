"""The caller's tenant scope, from the user extras the front proxy (Milo's IAM) sets on every request.

No scope extras: a platform caller, who sees every tenant. Otherwise exactly one parent type and one non-empty
parent name are required. Anything else fails closed with ScopeUnresolved, which the HTTP layer answers with
403 Forbidden rather than 422: the caller cannot fix it by editing the spec, it is their identity (as the
authenticator or front proxy presented it) that does not say which events they may see, and guessing would
either leak other tenants' events or hide their own.
"""

from __future__ import annotations

from apiserver.machinery.request import UserInfo
from auditlog.reading import Scope

PARENT_TYPE_EXTRA = "iam.miloapis.com/parent-type"
PARENT_NAME_EXTRA = "iam.miloapis.com/parent-name"
PARENT_TYPES = ("Organization", "Project", "User")


class ScopeUnresolved(Exception):
    """The caller's scope extras are present but unusable; the message says what is wrong (403 Forbidden)."""


def scope_of(user: UserInfo) -> Scope | None:
    """The tenant the caller is confined to, or None for a platform caller."""
    types = user.extra.get(PARENT_TYPE_EXTRA, ())
    names = user.extra.get(PARENT_NAME_EXTRA, ())
    if not types and not names:
        return None
    if len(types) != 1 or len(names) != 1:
        raise ScopeUnresolved(
            f"user {user.name!r} carries {len(types)} {PARENT_TYPE_EXTRA} and {len(names)} {PARENT_NAME_EXTRA} "
            "values; a scoped caller needs exactly one of each"
        )
    (parent_type,), (parent_name,) = types, names
    if parent_type not in PARENT_TYPES:
        raise ScopeUnresolved(
            f"user {user.name!r} has {PARENT_TYPE_EXTRA}={parent_type!r}; it must be one of {', '.join(PARENT_TYPES)}"
        )
    if not parent_name:
        raise ScopeUnresolved(f"user {user.name!r} has an empty {PARENT_NAME_EXTRA}")
    return Scope(parent_type, parent_name)
