"""`activity apiserver`: its flags (and ACTIVITY_* variables), and the real command run as a process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from activity.cli import build_parser
from activity.devtools.natsd import free_port
from apiserver.auth.authorize import Mode
from apiserver.machinery.certs import CertificateAuthority
from apiserver.machinery.tracing import TracingConfiguration
from apiserver.server.options import settings_from_args

STARTUP_SECONDS = 60
COLLECTION = "/apis/activity.miloapis.com/v1alpha1/auditlogqueries"


def test_flags_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracing = tmp_path / "tracing.yaml"
    tracing.write_text(
        "apiVersion: apiserver.config.k8s.io/v1beta1\nkind: TracingConfiguration\nsamplingRatePerMillion: 5\n"
    )
    key = tmp_path / "cursor.key"
    key.write_bytes(b"x" * 40)
    monkeypatch.setenv("ACTIVITY_SECURE_PORT", "7443")
    monkeypatch.setenv("ACTIVITY_MAX_QUERY_WINDOW", "7d")
    monkeypatch.setenv("ACTIVITY_AUTHORIZATION_MODE", "AlwaysAllow")
    args = build_parser("apiserver").parse_args(
        [
            "apiserver",
            "--store=chdb:///nowhere",
            "--max-page-size=50",
            "--store-workers=3",
            "--max-query-memory=512Mi",
            "--max-query-rows=1000000",
            "--request-timeout=2m",
            "--metrics-port=-1",
            f"--tracing-config-file={tracing}",
            f"--cursor-key-file={key}",
        ]
    )
    settings = settings_from_args(args)
    assert settings.secure_port == 7443
    assert settings.query.max_window == timedelta(days=7)
    assert settings.query.max_page_size == 50
    assert settings.store_workers == 3
    assert (settings.query.max_query_memory_bytes, settings.query.max_query_rows) == (512 * 1024**2, 1_000_000)
    assert settings.request_timeout_seconds == 120
    assert settings.query.cursor_key == b"x" * 40
    assert settings.metrics_port is None
    assert settings.tracing == TracingConfiguration("localhost:4317", 5)
    assert settings.auth.authorization_mode is Mode.ALWAYS_ALLOW


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        ("--max-query-window=30 days", "not a duration"),
        ("--max-page-size=0", "at least 1"),
        ("--max-query-memory=1GB", "write e.g. 1Gi"),
    ],
)
def test_bad_flags_say_what_to_fix(flag: str, fragment: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser("apiserver").parse_args(["apiserver", "--store=chdb:///x", flag])
    assert fragment in capsys.readouterr().err


def _request(
    port: int, method: str, path: str, context: ssl.SSLContext, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        connection.request(method, path, body=b"{}" if method == "POST" else None, headers=headers or {})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_the_command_serves_with_a_generated_certificate_and_json_logs(tmp_path: Path, store_dsn: str) -> None:
    ca = CertificateAuthority()
    (tmp_path / "client-ca.crt").write_bytes(ca.cert_pem)
    cert, key = ca.issue_client("alice", ["dev"]).write(tmp_path, "alice")
    port, metrics_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "activity.cli",
            "apiserver",
            f"--store={store_dsn}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--metrics-port={metrics_port}",
            f"--client-ca-file={tmp_path / 'client-ca.crt'}",
            "--authorization-mode=AlwaysAllow",
            "--logging-format=json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        # the generated certificate cannot be verified by anyone: that is what the log warns about
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(cert, key)
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, "the server exited during start-up"
            try:
                status, body = _request(port, "GET", "/livez", context)
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.2)
        assert (status, body) == (200, b"ok")
        secret = "Bearer do-not-log-this-token"
        status, body = _request(port, "POST", COLLECTION, context, {"Authorization": secret})
        assert status == 201, body
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0
    records = [json.loads(line) for line in stderr.decode().splitlines() if line.strip()]
    messages = " ".join(r["msg"] for r in records)
    assert "self-signed" in messages
    access = [r for r in records if r.get("path") == COLLECTION]
    assert [(r["method"], r["status"], r["user"]) for r in access] == [("POST", 201, "alice")]
    assert "do-not-log-this-token" not in stderr.decode()
