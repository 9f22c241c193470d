"""The benchmark's readings of its child processes: a Prometheus sample by name and labels, resident memory and
CPU seconds."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from activity.devtools.bench.processes import cpu_seconds, metric_value, rss_bytes, sample_value

# What a scrape may hold beyond `name{labels} value`: HELP text quoting a sample, more labels in another order,
# escaped label values, and timestamps.
EXPOSITION = b"""# HELP activity_consumer_store_errors_total e.g. activity_consumer_store_errors_total{kind="x"} 9
# TYPE activity_consumer_store_errors_total counter
activity_consumer_store_errors_total{kind="transient"} 3 1700000000000
activity_consumer_store_errors_total{stage="insert",kind="permanent"} 7
activity_consumer_store_errors_total{kind="quote \\" in it"} 11
"""


@pytest.fixture
def metrics_url() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(EXPOSITION)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_sample_is_found_by_name_and_labels_whatever_else_the_page_holds(metrics_url: str) -> None:
    name = "activity_consumer_store_errors_total"
    assert metric_value(metrics_url, name, kind="transient") == 3  # despite its timestamp
    assert metric_value(metrics_url, name, kind="permanent", stage="insert") == 7  # labels in any order
    assert metric_value(metrics_url, name, kind='quote " in it') == 11
    assert metric_value(metrics_url, name, kind="x") == 0  # only quoted in the HELP text
    assert metric_value(metrics_url, name) == 0  # no sample without labels
    assert sample_value(EXPOSITION.decode(), name, kind="x") is None  # absent, not zero, for a test to tell


def test_a_page_that_does_not_answer_reads_as_zero() -> None:
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    assert metric_value(f"http://127.0.0.1:{port}/metrics", "up") == 0


def test_resident_memory_follows_what_a_process_touches() -> None:
    before = rss_bytes(os.getpid())
    held = bytearray(64 << 20)  # zero-filled: every page is touched
    assert rss_bytes(os.getpid()) - before >= 48 << 20
    del held


def test_cpu_seconds_count_a_busy_child_and_read_zero_once_it_is_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time\nend = time.time() + 60\nwhile time.time() < end: pass"]
    )
    try:
        deadline = time.monotonic() + 60
        while cpu_seconds(child.pid) < 0.2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cpu_seconds(child.pid) >= 0.2
    finally:
        child.kill()
        child.wait()
    assert cpu_seconds(child.pid) == 0.0
