"""The caller's tenant scope from user extras: platform when absent, one tenant when complete, refused otherwise."""

from __future__ import annotations

import pytest

from apiserver.machinery.request import UserInfo
from apiserver.registry.auditlogquery.scope import ScopeUnresolved, scope_of
from auditlog.reading import Scope

TYPE, NAME = "iam.miloapis.com/parent-type", "iam.miloapis.com/parent-name"


def user(**extra: tuple[str, ...]) -> UserInfo:
    return UserInfo("someone", extra={TYPE if k == "type" else NAME: v for k, v in extra.items()})


def test_no_scope_extras_is_the_platform() -> None:
    assert scope_of(UserInfo("admin", extra={"other.example.com/x": ("y",)})) is None


@pytest.mark.parametrize("parent_type", ["Organization", "Project", "User"])
def test_complete_scope_extras_confine_to_one_tenant(parent_type: str) -> None:
    assert scope_of(user(type=(parent_type,), name=("acme",))) == Scope(parent_type, "acme")


@pytest.mark.parametrize(
    ("extras", "message"),
    [
        ({"type": ("Team",), "name": ("acme",)}, "'Team'; it must be one of Organization, Project, User"),
        ({"type": ("organization",), "name": ("acme",)}, "it must be one of"),
        ({"type": ("Organization",)}, "carries 1 iam.miloapis.com/parent-type and 0 iam.miloapis.com/parent-name"),
        ({"name": ("acme",)}, "carries 0 iam.miloapis.com/parent-type and 1"),
        ({"type": ("Organization", "Project"), "name": ("a", "b")}, "exactly one of each"),
        ({"type": ("Organization",), "name": ("",)}, "empty iam.miloapis.com/parent-name"),
    ],
)
def test_incomplete_or_unknown_scope_fails_closed(extras: dict[str, tuple[str, ...]], message: str) -> None:
    with pytest.raises(ScopeUnresolved, match=message):
        scope_of(user(**extras))
