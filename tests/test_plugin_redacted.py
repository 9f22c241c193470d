"""`kubectl activity history --diff` over a Secret whose values were redacted at ingest: it says which keys changed,
never shows a credential or a marker, and an unchanged value is not reported as a change."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from apiserver_support import apiserver_with_events
from plugin_support import PluginEnv, timestamp
from redaction_support import KEY, audit_event, b64, secret
from rich.console import Console

from auditlog.redaction import MARKER_PREFIX
from ingest.redaction import RedactionSettings, Redactor
from kubectl_activity import history

NAME, NAMESPACE = "db-creds", "shop"
# The Secret's life: created, password rotated, relabelled (values unchanged), a key added, deleted.
VERSIONS = (
    ("create", {"username": "app", "password": "first-Pa55"}, None),
    ("update", {"username": "app", "password": "second-Pa55"}, None),
    ("patch", {"username": "app", "password": "second-Pa55"}, {"tier": "db"}),
    ("update", {"username": "app", "password": "second-Pa55", "api-key": "k3y-added"}, {"tier": "db"}),
)
PLAIN = [v for _, data, _ in VERSIONS for v in data.values()]
CREDENTIALS = [form for v in PLAIN if v != "app" for form in (v, b64(v))]


def secret_history(start: datetime) -> list[dict[str, object]]:
    """The events as the webhook stores them: redacted at ingest."""
    redactor = Redactor(RedactionSettings(key=KEY))
    events = []
    for i, (verb, data, labels) in enumerate(VERSIONS):
        obj = secret(data, version=i + 1, labels=labels)
        request = obj if verb != "patch" else {"metadata": {"labels": labels}}
        event = audit_event(
            verb, "secrets", request=request, response=obj, stamp=timestamp(start + timedelta(minutes=i))
        )
        events.append(orjson.loads(redactor.redact(orjson.dumps(event))))
    gone = audit_event("delete", "secrets", stamp=timestamp(start + timedelta(minutes=9)))
    return [*events, gone | {"responseObject": {"kind": "Status", "apiVersion": "v1", "status": "Success"}}]


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    with apiserver_with_events(tmp_path_factory) as server:
        server.insert_events(secret_history(datetime.now(UTC) - timedelta(hours=2)))
        yield PluginEnv(server)


def test_history_diff_of_a_redacted_secret_says_what_changed_and_shows_no_value(plugin: PluginEnv) -> None:
    done = plugin.kubectl("history", "secrets", NAME, "-n", NAMESPACE, "--diff")
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert MARKER_PREFIX not in shown
    assert [c for c in CREDENTIALS if c in shown] == []
    created, rotated, relabelled, added, deleted = shown.split("── ")[1:]
    assert "Initial state" in created and "+data:\n+  password: (redacted)\n+  username: (redacted)" in created
    assert "data.password: changed (redacted)" in rotated and "username" not in rotated
    assert "changed (redacted)" not in relabelled and "+    tier: db" in relabelled
    assert "+  api-key: (redacted)" in added and "changed (redacted)" not in added
    assert "deleted" in deleted


def test_the_renderer_masks_markers_wherever_they_are() -> None:
    before = {"kind": "Secret", "data": {"tls.crt": MARKER_PREFIX + "0" * 16}, "items": [MARKER_PREFIX + "1" * 16]}
    after = {"kind": "Secret", "data": {"tls.crt": MARKER_PREFIX + "2" * 16}, "items": [MARKER_PREFIX + "1" * 16]}
    events = [
        {"verb": "update", "responseStatus": {"code": 200}, "responseObject": after, "user": {"username": "u"}},
        {"verb": "create", "responseStatus": {"code": 201}, "responseObject": before, "user": {"username": "u"}},
    ]
    out = io.StringIO()
    history.render_diffs(history.changes(events), Console(file=out, force_terminal=False, soft_wrap=True))
    text = out.getvalue()
    assert MARKER_PREFIX not in text
    assert "data[tls.crt]: changed (redacted)" in text and "items[0]" not in text
    assert "no change" not in text
