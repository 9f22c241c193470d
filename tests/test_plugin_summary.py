"""`kubectl activity summary`: top-N request counts equal the counts computed from the stored events."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from plugin_support import PluginEnv, plugin

__all__ = ["plugin"]

KEYS = {
    "user": lambda e: e["user"]["username"],
    "verb": lambda e: e["verb"],
    "resource": lambda e: e.get("objectRef", {}).get("resource") or "<none>",
    "namespace": lambda e: e.get("objectRef", {}).get("namespace") or "<none>",
}


def request_counts(events: list[dict[str, Any]], by: str) -> Counter[str]:
    """One count per request (auditID), however many stages were stored."""
    first = {e["auditID"]: e for e in events}
    return Counter(KEYS[by](e) for e in first.values())


def rows(stdout: str) -> list[tuple[str, int]]:
    table = stdout.split("\n\n")[0].splitlines()[1:]
    return [(line.rsplit(None, 2)[0], int(line.rsplit(None, 2)[1])) for line in table]


@pytest.mark.parametrize("by", sorted(KEYS))
def test_summary_counts_match_the_events(plugin: PluginEnv, by: str) -> None:
    done = plugin.kubectl("summary", "--start-time", "now-6h", "--by", by, "--top", "5")
    assert done.returncode == 0, done.stderr
    expected = request_counts(plugin.events, by)
    shown = rows(done.stdout)
    assert len(shown) == min(5, len(expected))
    assert all(expected[value] == count for value, count in shown)
    assert [c for _, c in shown] == sorted(expected.values(), reverse=True)[:5]
    requests = len({e["auditID"] for e in plugin.events})
    assert f"{requests} requests in {len(plugin.events)} events scanned" in done.stdout
    assert "the API has no facet query" in done.stdout
    assert "scanned" in done.stderr  # the progress line


def test_summary_scan_is_capped(plugin: PluginEnv) -> None:
    done = plugin.kubectl("summary", "--start-time", "now-6h", "--by", "verb", "--max-events", "100")
    assert done.returncode == 0, done.stderr
    newest = plugin.server.newest_first()[:100]
    assert dict(rows(done.stdout)) == dict(request_counts(newest, "verb"))
    assert "in 100 events scanned" in done.stdout
    assert "Stopped at --max-events=100" in done.stdout


def test_summary_with_filter_flags(plugin: PluginEnv) -> None:
    done = plugin.kubectl("summary", "--start-time", "now-6h", "--by", "user", "--writes-only", "--top", "50")
    assert done.returncode == 0, done.stderr
    writes = [e for e in plugin.events if e["verb"] in ("create", "update", "patch", "delete")]
    assert dict(rows(done.stdout)) == dict(request_counts(writes, "user"))
