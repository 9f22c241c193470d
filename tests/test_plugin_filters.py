"""Convenience flags → CEL: each flag through the real kubectl selects exactly what the equivalent Python predicate
selects, and any value (quotes, backslashes, unicode, control characters) keeps its meaning in CEL."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plugin_support import AWKWARD_USERS, PluginEnv, plugin

from kubectl_activity.cli import shell_quote
from kubectl_activity.client import ActivityClient, QueryRequest
from kubectl_activity.filters import Selection, combine
from kubectl_activity.kubeconfig import Overrides

__all__ = ["plugin"]

Predicate = Callable[[dict[str, Any]], bool]
WINDOW = ("--start-time", "now-6h")
WRITES = {"create", "update", "patch", "delete", "deletecollection"}


def ref(event: dict[str, Any], key: str) -> str:
    return str((event.get("objectRef") or {}).get(key, ""))


CASES: list[tuple[list[str], Predicate]] = [
    (["--actor", "bob@example.com"], lambda e: e["user"]["username"] == "bob@example.com"),
    (
        ["--actor", "bob@example.com,o'brien@example.com"],
        lambda e: e["user"]["username"] in ("bob@example.com", "o'brien@example.com"),
    ),
    (["--verb", "delete", "--verb", "patch,create"], lambda e: e["verb"] in ("delete", "patch", "create")),
    (["--verb", "get"], lambda e: e["verb"] == "get"),
    (["-n", "prod"], lambda e: ref(e, "namespace") == "prod"),
    (["--resource", "deployments"], lambda e: ref(e, "resource") == "deployments"),
    (["--name", "web"], lambda e: ref(e, "name") == "web"),
    (["--exclude-system"], lambda e: not e["user"]["username"].startswith("system:")),
    (["--writes-only"], lambda e: e["verb"] in WRITES),
    (
        ["--writes-only", "--exclude-system", "--filter", "responseStatus.code >= 400"],
        lambda e: (
            e["verb"] in WRITES
            and not e["user"]["username"].startswith("system:")
            and e.get("responseStatus", {}).get("code", 0) >= 400
        ),
    ),
]


@pytest.mark.parametrize(("flags", "keep"), CASES, ids=[" ".join(flags) for flags, _ in CASES])
def test_flag_selects_what_the_predicate_selects(plugin: PluginEnv, flags: list[str], keep: Predicate) -> None:
    expected = plugin.server.newest_first(keep)
    assert expected, "the events give the flag something to select"
    assert len(expected) < len(plugin.events), "and something to leave out"
    assert plugin.items(*WINDOW, "--limit", "500", *flags) == expected


def test_filters_compose_with_and() -> None:
    selection = Selection(users=("a",), verbs=("get", "list"), namespace="ns", exclude_system=True)
    assert combine(selection, "x || y") == (
        '(user.username == "a") && (verb in ["get", "list"]) && (!user.username.startsWith("system:")) && '
        '(objectRef.namespace == "ns") && (x || y)'
    )
    assert combine(Selection(), "") == ""


def select(plugin: PluginEnv, selection: Selection) -> list[dict[str, Any]]:
    request = QueryRequest("now-6h", "now", combine(selection), 1000)
    with ActivityClient(Overrides(kubeconfig=str(plugin.server.kubeconfig))) as client:
        return [e for page in client.pages(request) for e in page.events]


values = st.one_of(
    st.sampled_from(AWKWARD_USERS),
    st.builds(lambda v, s: v + s, st.sampled_from(AWKWARD_USERS), st.sampled_from(["'", '"', "\\", "\x00", " "])),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=12),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=values, flag=st.sampled_from(["user", "namespace", "name"]))
def test_any_value_round_trips_into_cel(plugin: PluginEnv, value: str, flag: str) -> None:
    if flag == "user":
        selection, keep = Selection(users=(value,)), lambda e: e["user"]["username"] == value
    else:
        selection = Selection(namespace=value) if flag == "namespace" else Selection(name=value)
        keep = lambda e: ref(e, flag) == value  # noqa: E731
    assert select(plugin, selection) == plugin.server.newest_first(keep)


@pytest.mark.parametrize(
    "arg",
    ["plain", "verb == 'delete' && objectRef.namespace == 'prod'", 'it\'s "quoted"', "$HOME 'x'", "a\\b 'c'", ""],
)
def test_next_page_arguments_are_quoted_readably_and_exactly(arg: str) -> None:
    quoted = shell_quote(arg)
    assert shlex.split(f"cmd {quoted}") == ["cmd", arg]
    if "'" in arg and not any(c in arg for c in '"$`\\!'):
        assert quoted == f'"{arg}"'


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")))
def test_any_argument_survives_the_shell_quoting(arg: str) -> None:
    assert shlex.split(f"cmd {shell_quote(arg)}") == ["cmd", arg]
