"""`activity up` redacts with a key it keeps in DIR/pki (never renewed with the certificates), takes --redact-path,
and what AuditLogQuery returns through kubectl holds no credential."""

from __future__ import annotations

import json
import stat
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from plugin_support import timestamp
from redaction_support import audit_event, b64, leaks, secret
from up_support import running_up

from activity.devtools.up.pki import LocalPki
from auditlog.redaction import marker


def test_the_key_is_made_once_kept_private_and_not_renewed_with_the_certificates(tmp_path: Path) -> None:
    pki = LocalPki(tmp_path / "pki")
    key = pki.ensure_redaction_key()
    assert len(key) == 64 and stat.S_IMODE(pki.redaction_key.stat().st_mode) == 0o600
    pki.generate()  # what a renewal does
    assert pki.ensure_redaction_key() == key


def test_up_stores_markers_made_with_its_kept_key(tmp_path: Path) -> None:
    data = tmp_path / "data"
    now = timestamp(datetime.now(UTC))
    config = {"kind": "ConfigMap", "apiVersion": "v1", "data": {"password": "cm-Pa55", "mode": "fast"}}
    events = [
        audit_event("create", "secrets", request=secret({"password": "up-Pa55"}), stamp=now),
        audit_event("create", "configmaps", name="settings", request=config, response=config, stamp=now),
    ]
    body = json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": events}).encode()
    with running_up(data, "--redact-path", "core/configmaps:data.password") as up:
        request = urllib.request.Request(
            f"http://127.0.0.1:{up.port_base}/events", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        ids = {e["auditID"] for e in events}
        found = up.wait_for_events(lambda got: ids <= {e["auditID"] for e in got})
        assert ids <= {e["auditID"] for e in found}
    shown = json.dumps(found).encode()
    assert leaks(shown, ["up-Pa55", b64("up-Pa55"), "cm-Pa55"]) == []
    key = (data / "pki" / "redaction.key").read_bytes().strip()
    by_id = {e["auditID"]: e for e in found}
    assert by_id[events[0]["auditID"]]["requestObject"]["data"]["password"] == marker(key, b64("up-Pa55"))
    stored_config = by_id[events[1]["auditID"]]["responseObject"]["data"]
    assert stored_config == {"password": marker(key, "cm-Pa55"), "mode": "fast"}
