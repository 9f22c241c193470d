"""Page sizes: one page holds the server's default (one constant, auditlog.paging, stated the same by the server's
error, the plugin's help and the README); --all-pages asks for the largest page the server allows (and fits a
server whose --max-page-size is lower); progress is one line a page at most, and at most one a second."""

from __future__ import annotations

import io
import json
import shlex
from pathlib import Path

import pytest
from plugin_support import PluginEnv, plugin, posted_specs

from auditlog.paging import DEFAULT_LIMIT, MAX_PAGE_SIZE
from kubectl_activity.cli import build_parser
from kubectl_activity.progress import Progress

__all__ = ["plugin"]

README = Path(__file__).resolve().parent.parent / "README.md"


def test_one_page_is_the_servers_default_and_the_plugin_does_not_restate_it(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "-o", "json", "-v=8")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["items"]) == DEFAULT_LIMIT
    assert [("limit" in spec) for spec in posted_specs(done.stderr)] == [False]


def test_all_pages_asks_for_the_largest_page(plugin: PluginEnv) -> None:
    done = plugin.kubectl("query", "--start-time", "now-6h", "--all-pages", "-o", "json", "-v=8")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == plugin.server.newest_first()
    assert len(plugin.server.events) <= MAX_PAGE_SIZE
    assert [spec["limit"] for spec in posted_specs(done.stderr)] == [MAX_PAGE_SIZE]  # one round trip


def test_all_pages_continues_a_query_at_its_page_size(plugin: PluginEnv) -> None:
    first = plugin.kubectl("query", "--start-time", "now-6h", "-o", "json")
    assert first.returncode == 0, first.stderr
    words = shlex.split(first.stderr.splitlines()[-1])
    rest = plugin.kubectl(*words[2:], "--all-pages")  # the next-page command, then every page after it
    assert rest.returncode == 0, rest.stderr
    items = json.loads(first.stdout)["items"] + json.loads(rest.stdout)["items"]
    assert items == plugin.server.newest_first()


def test_the_default_is_stated_the_same_everywhere(plugin: PluginEnv, capsys: pytest.CaptureFixture[str]) -> None:
    refused = plugin.server.create({"limit": 0})
    assert refused.status == 422
    assert f"(omit it for {DEFAULT_LIMIT})" in refused.json()["message"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["query", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"events per page (default: the server's, {DEFAULT_LIMIT};" in text
    assert f"{MAX_PAGE_SIZE} by default" in text
    readme = " ".join(README.read_text().split())
    assert f"{DEFAULT_LIMIT} per page" in readme
    assert f"{MAX_PAGE_SIZE} events a round trip" in readme


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_progress_is_one_line_a_second_at_most_and_always_the_last() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, clock=clock)
    for page in range(1, 31):  # 30 pages, 8 a second
        progress.update(f"page {page}")
        clock.now += 0.125
    progress.done("page 30")
    lines = out.getvalue().splitlines()
    assert lines == ["page 1", "page 9", "page 17", "page 25", "page 30"]


def test_progress_does_not_repeat_the_last_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, clock=clock)
    progress.update("page 1")
    progress.done("page 1")
    assert out.getvalue().splitlines() == ["page 1"]
