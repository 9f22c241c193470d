"""`kubectl activity query` through the real kubectl: the table, every output format, paging and --all-pages."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import orjson
import yaml
from apiserver_support import ApiServerEnv
from plugin_support import PluginEnv, plugin

from auditlog.fields import table_fields

__all__ = ["plugin"]

DEFAULT_HEADERS = {"TIMESTAMP", "VERB", "USER", "NAMESPACE", "RESOURCE", "NAME", "STATUS"}


def newest(plugin: PluginEnv, n: int) -> list[dict[str, Any]]:
    server: ApiServerEnv = plugin.server
    return server.newest_first()[:n]


def shown(event: dict[str, Any], path: str) -> str:
    """What a table cell shows for an event field (as a user reads it, computed without the plugin's code)."""
    node: Any = event
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if path == "stageTimestamp":
        return str(node)[:19] + "Z"
    if node in (None, "", [], 0):
        return "<none>"
    return ",".join(node) if isinstance(node, list) else str(node)


def test_default_table_shows_the_newest_events(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--limit", "10")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    fields = table_fields()  # the catalogue orders the columns
    assert {f.header for f in fields} == DEFAULT_HEADERS
    assert lines[0].split() == [f.header for f in fields]
    expected = [[shown(e, f.path) for f in fields] for e in newest(plugin, 10)]
    assert [line.split() for line in lines[1:]] == expected


def test_more_results_hint_is_the_exact_next_page_command(plugin: PluginEnv) -> None:
    first = plugin.kubectl("query", "--limit", "7", "--verb", "get", "-o", "json")
    assert first.returncode == 0, first.stderr
    words = shlex.split(first.stderr.splitlines()[-1])
    assert words[:2] == ["kubectl", "activity"]
    assert words[-2] == "--continue-after"
    second = plugin.kubectl(*words[2:])
    assert second.returncode == 0, second.stderr
    pages = orjson.loads(first.stdout)["items"] + orjson.loads(second.stdout)["items"]
    assert pages == plugin.server.newest_first(lambda e: e["verb"] == "get")[:14]


def test_wide_adds_audit_id_groups_source_ip_and_user_agent(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--limit", "5", "-o", "wide")
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    fields = table_fields(wide=True)
    assert set(table_fields()) < set(fields)
    assert {"AUDIT ID", "GROUPS", "SOURCE IP", "USER AGENT"} <= {f.header for f in fields}
    titles = list(re.finditer(r"\S+(?: \S+)*", header))  # titles are one space inside, several between
    assert [t.group() for t in titles] == [f.header for f in fields]
    starts = [t.start() for t in titles]  # columns are left-aligned under their titles
    for event, row in zip(newest(plugin, 5), rows, strict=True):
        cells = [row[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        assert cells == [shown(event, f.path) for f in fields]


def test_json_and_yaml_are_a_list_of_the_stored_events(plugin: PluginEnv) -> None:
    as_json = plugin.kubectl("query", "--limit", "6", "-o", "json")
    as_yaml = plugin.kubectl("query", "--limit", "6", "-o", "yaml")
    assert as_json.returncode == 0 and as_yaml.returncode == 0, as_json.stderr + as_yaml.stderr
    document = json.loads(as_json.stdout)
    assert document["kind"] == "List"
    assert document["items"] == newest(plugin, 6)
    assert document["metadata"]["continue"]  # more pages exist
    assert yaml.safe_load(as_yaml.stdout)["items"] == document["items"]


def test_jsonpath_uses_kubectl_template_syntax(plugin: PluginEnv) -> None:
    flat = plugin.kubectl("query", "--limit", "5", "-o", "jsonpath={.items[*].auditID}")
    assert flat.returncode == 0, flat.stderr
    assert flat.stdout.split(" ") == [e["auditID"] for e in newest(plugin, 5)]

    template = 'jsonpath={range .items[*]}{.verb}{"\\t"}{.user.username}{"\\n"}{end}'
    ranged = plugin.kubectl("query", "--limit", "5", "-o", template)
    assert ranged.returncode == 0, ranged.stderr
    assert ranged.stdout.splitlines() == [f"{e['verb']}\t{e['user']['username']}" for e in newest(plugin, 5)]


def test_name_prints_resource_group_and_name(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--limit", "20", "-o", "name")
    assert done.returncode == 0, done.stderr
    expected = []
    for event in newest(plugin, 20):
        ref = event["objectRef"]
        if ref.get("name"):
            group = f".{ref['apiGroup']}" if ref.get("apiGroup") else ""
            expected.append(f"{ref['resource']}{group}/{ref['name']}")
    assert done.stdout.splitlines() == expected


def test_all_pages_returns_every_event_of_the_window_once(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--start-time", "now-6h", "--limit", "40", "--all-pages", "-o", "json")
    assert done.returncode == 0, done.stderr
    items = orjson.loads(done.stdout)["items"]
    assert items == plugin.server.newest_first()  # every event is inside now-6h
    keys = [(e["auditID"], e["stage"]) for e in items]
    assert len(keys) == len(set(keys))
    progress = [line for line in done.stderr.splitlines() if line.startswith("page ")]
    pages = -(-len(items) // 40)
    assert 1 <= len(progress) <= pages  # at most one line a page (and a second): see test_plugin_paging.py
    assert progress[-1] == f"page {pages}: {len(items)} events"


def test_all_pages_table_has_one_header(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--start-time", "now-6h", "--limit", "100", "--all-pages")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[0] == "TIMESTAMP"
    assert sum(line.startswith("TIMESTAMP") for line in lines) == 1
    assert len(lines) == 1 + len(plugin.events)
