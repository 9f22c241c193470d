"""The commands `activity up` suggests, run verbatim: the real kubectl finds the `kubectl-activity` plugin on
PATH and reaches the local stack through the kubeconfig `up` wrote, over its demo traffic."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from up_support import UpProcess, audit_ids, burst_stored, first_run_burst, running_up

from activity.devtools.loadgen.events import PEOPLE, SERVICE_ACCOUNTS, SYSTEM_USERS
from auditlog.paging import DEFAULT_LIMIT

DEMO_USERS = {*PEOPLE, *SERVICE_ACCOUNTS, *SYSTEM_USERS}
WRITES = ("create", "update", "patch", "delete")


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    with running_up(tmp_path_factory.mktemp("up") / "data", "--with-demo-traffic") as running:
        whole_burst = burst_stored(first_run_burst())
        assert whole_burst(running.wait_for_events(whole_burst))
        yield running


def _rows(table: str) -> list[list[str]]:
    lines = [line.split() for line in table.splitlines() if line.strip()]
    assert lines[0][:3] == ["TIMESTAMP", "VERB", "USER"], table
    return lines[1:]


def _stable_events(up: UpProcess, end: str, **window: str) -> list[dict[str, Any]]:
    """The window's events once two reads agree: events stamped shortly before `end` may still be on their way."""
    previous = up.events(end=end, **window)
    for _ in range(30):
        time.sleep(1.0)
        current = up.events(end=end, **window)
        if audit_ids(current) == audit_ids(previous):
            return current
        previous = current
    raise AssertionError("the window kept changing")


def test_query_shows_the_newest_demo_events_and_the_next_page(up: UpProcess) -> None:
    done = up.run_banner_command("kubectl activity query --kubeconfig")
    assert done.returncode == 0, done.stderr
    rows = _rows(done.stdout)
    assert len(rows) == DEFAULT_LIMIT  # the server's default page: the plugin and the server share one
    assert {row[2] for row in rows} <= DEMO_USERS
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)
    assert "kubectl activity query --kubeconfig" in done.stderr and "--continue-after" in done.stderr


def test_the_suggested_filter_selects_prod_deletes(up: UpProcess) -> None:
    done = up.run_banner_command(
        "kubectl activity query --kubeconfig", "-o", "json", "--limit", "1000", having="--filter"
    )
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    assert items
    assert {(e["verb"], e["objectRef"]["namespace"]) for e in items} == {("delete", "prod")}
    stored = up.events(filter="verb == 'delete' && objectRef.namespace == 'prod'")
    assert audit_ids(items) <= audit_ids(stored)


def test_history_diff_shows_every_write_of_the_suggested_object_oldest_first(up: UpProcess) -> None:
    words = up.banner_command("kubectl activity history").split()
    resource, name, namespace = words[3], words[4], words[words.index("-n") + 1]
    writes = " || ".join(f"verb == '{verb}'" for verb in WRITES)
    selected = (
        f"objectRef.resource == '{resource}' && objectRef.name == '{name}' && objectRef.namespace == '{namespace}'"
    )
    expected = sorted(up.events(start="now-30d", filter=f"{selected} && ({writes})"), key=lambda e: e["stageTimestamp"])
    done = up.run_banner_command("kubectl activity history")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Initial state" in out
    assert "--- before" in out and "+++ after" in out  # a unified diff between two versions
    assert "registry.example.com/app:" in out  # the object's content, from the stored responseObject
    positions = [out.find(f"{e['verb']} by {e['user']['username']} ({e['responseStatus']['code']})") for e in expected]
    assert len(expected) >= 2
    assert -1 not in positions, out
    assert positions == sorted(positions)


def test_summary_by_user_counts_what_is_stored(up: UpProcess) -> None:
    cut = (datetime.now(UTC) - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    counts = Counter(e["user"]["username"] for e in _stable_events(up, cut))
    done = up.run_banner_command("kubectl activity summary", "--end-time", cut)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines() if line.strip()]
    assert lines[0] == ["USER", "REQUESTS", "SHARE"]
    shown = {row[0]: int(row[1]) for row in lines[1:] if len(row) == 3 and row[0] in DEMO_USERS}
    assert len(shown) == 10
    assert shown == {user: counts[user] for user in shown}
    assert min(shown.values()) >= max((n for user, n in counts.items() if user not in shown), default=0)
    assert f"{sum(counts.values())} requests in {sum(counts.values())} events scanned" in done.stdout
