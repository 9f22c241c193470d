"""--all-pages, history and summary against a server whose --max-page-size is below the plugin's largest page:
the plugin lowers its page to the server's maximum once, instead of failing (its own module: one embedded store
per process at a time)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from apiserver_support import ApiServerEnv, apiserver_with_events
from plugin_support import PluginEnv, posted_specs, statuses

from apiserver.registry.auditlogquery.settings import QuerySettings
from auditlog.paging import MAX_PAGE_SIZE


@pytest.fixture(scope="module")
def small_pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    with apiserver_with_events(tmp_path_factory, query=QuerySettings(cursor_key=b"k" * 32, max_page_size=50)) as env:
        yield PluginEnv(env)


def test_all_pages_fits_a_server_with_smaller_pages(small_pages: PluginEnv) -> None:
    server: ApiServerEnv = small_pages.server
    done = small_pages.kubectl("query", "--start-time", "now-6h", "--all-pages", "-o", "json", "-v=8")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == server.newest_first()
    pages = -(-len(server.events) // 50)
    assert statuses(done.stderr) == ["422"] + ["201"] * pages  # refused once, then the server's largest
    assert [spec["limit"] for spec in posted_specs(done.stderr)] == [MAX_PAGE_SIZE] + [50] * pages
    summary = small_pages.kubectl("summary", "--start-time", "now-6h")
    assert summary.returncode == 0, summary.stderr
    assert f"{len({e['auditID'] for e in server.events})} requests" in summary.stdout
    explicit = small_pages.kubectl("query", "--limit", "60")  # a page size the user chose is not changed
    assert explicit.returncode == 1 and "must be between 1 and 50" in explicit.stderr
