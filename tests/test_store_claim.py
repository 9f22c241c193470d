"""The embedded store is one process's: a second part started on the same chdb directory exits at once with one
line naming the directory, the process holding it and what to do; the engine's own output lands in our logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from auth_support import CertificateAuthority
from consumer_support import spawn_consumer

from activity.devtools.natsd import NatsServer, free_port
from auditlog.config import parse_store_dsn
from auditlog.storelock import LOCK_FILE, StoreInUse, claim, holder

REFUSAL_SECONDS = 60  # generous for a loaded 2-core machine; the refusal itself comes before any network wait
PYTHON = [sys.executable, "-m", "activity.cli"]


def _directory(dsn: str) -> Path:
    path = parse_store_dsn(dsn).path
    assert path is not None
    return path


def _wait_for_claim(process: subprocess.Popen[bytes], directory: Path) -> None:
    deadline = time.monotonic() + REFUSAL_SECONDS
    while holder(directory) is None or holder(directory).pid != process.pid:  # type: ignore[union-attr]
        assert process.poll() is None, process.communicate()[1].decode()
        assert time.monotonic() < deadline, f"{process.args} never claimed {directory}"
        time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def _apiserver_args(tmp_path: Path, store_dsn: str) -> list[str]:
    (tmp_path / "client-ca.crt").write_bytes(CertificateAuthority().cert_pem)
    return [
        *PYTHON,
        "apiserver",
        f"--store={store_dsn}",
        "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}",
        "--metrics-port=-1",
        f"--client-ca-file={tmp_path / 'client-ca.crt'}",
        "--authorization-mode=AlwaysAllow",
        "--logging-format=json",
    ]


@contextmanager
def _running(args: Sequence[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        _stop(process)


def _refused(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, timeout=REFUSAL_SECONDS, check=False)
    assert time.monotonic() - started < REFUSAL_SECONDS
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "DB::Exception" not in done.stderr
    return done


def _says_who_and_what_to_do(message: str, directory: Path, pid: int, command: str) -> None:
    assert f"the embedded store {directory} is in use by process {pid} (" in message
    assert command in message
    assert "`activity up`" in message and "http(s)://USER:PASSWORD@HOST:PORT/DATABASE" in message


def test_an_apiserver_next_to_a_consumer_exits_at_once_in_json(
    tmp_path: Path, nats_server: NatsServer, store_dsn: str
) -> None:
    directory = _directory(store_dsn)
    consumer = spawn_consumer(nats_server.url, store_dsn)
    try:
        _wait_for_claim(consumer, directory)
        done = _refused(_apiserver_args(tmp_path, store_dsn))
        records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # every line is JSON
        errors = [r for r in records if r["level"] == "error"]
        assert len(errors) == 1, records
        _says_who_and_what_to_do(errors[0]["msg"], directory, consumer.pid, "activity.cli consume")
        assert consumer.poll() is None, "the first part keeps running"
    finally:
        _stop(consumer)


def test_a_consumer_next_to_an_apiserver_exits_at_once(tmp_path: Path, nats_server: NatsServer, store_dsn: str) -> None:
    directory = _directory(store_dsn)
    with _running(_apiserver_args(tmp_path, store_dsn)) as apiserver:
        _wait_for_claim(apiserver, directory)
        done = _refused([*PYTHON, "consume", "--nats-url", nats_server.url, "--store", store_dsn])
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
        _says_who_and_what_to_do(lines[0], directory, apiserver.pid, "activity.cli apiserver")
        assert apiserver.poll() is None


# A process using chdb on the directory without our lock file (a Python session, an older version).
_CHDB_USER = """
import sys, time, clickhouse_connect
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
client.command("SELECT 1")
print("open", flush=True)
time.sleep(120)
"""


@contextmanager
def _chdb_user(directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _CHDB_USER, str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == b"open\n"
        yield process
    finally:
        process.kill()
        process.communicate()


def test_a_process_holding_the_engine_itself_is_named_from_chdbs_status_file(store_dsn: str) -> None:
    directory = _directory(store_dsn)
    with _chdb_user(directory) as other:
        assert not (directory / LOCK_FILE).exists() or holder(directory) is not None
        done = _refused([*PYTHON, "migrate", "--store", store_dsn])
        message = done.stderr.strip().splitlines()[-1]
        assert message.startswith("error: "), done.stderr
        assert f"in use by process {other.pid} (" in message and "-c" in message


def test_the_engines_own_output_becomes_json_log_lines(store_dsn: str) -> None:
    """The engine's raw line (here: it refuses a directory another process holds) arrives as a log record."""
    directory = _directory(store_dsn)
    script = (
        "import sys, clickhouse_connect\n"
        "from apiserver.machinery.logs import configure_logging\n"
        "from auditlog import engineoutput\n"
        "configure_logging('json')\n"
        "engineoutput.capture()\n"
        "try:\n"
        "    clickhouse_connect.get_client(interface='chdb', path=sys.argv[1])\n"
        "except Exception as err:\n"
        "    import logging; logging.getLogger('test').error('open failed: %s', type(err).__name__)\n"
        "import time; time.sleep(1)\n"  # the reader thread logs what the engine wrote
    )
    with _chdb_user(directory):
        done = subprocess.run(
            [sys.executable, "-c", script, str(directory)], capture_output=True, text=True, timeout=120, check=False
        )
    records = [json.loads(line) for line in done.stderr.splitlines() if line.strip()]  # every line is JSON
    engine = [r for r in records if r.get("logger") == "engine"]
    assert any("Cannot lock file" in r["msg"] for r in engine), records
    assert any(r["msg"].startswith("open failed") for r in records)


def test_claims_nest_in_one_process_and_end_with_it(tmp_path: Path) -> None:
    config = parse_store_dsn(f"chdb://{tmp_path / 'store'}")
    probe = [*PYTHON, "migrate", "--store", f"chdb://{tmp_path / 'store'}", "--print"]
    other = (
        "import sys\nfrom auditlog.config import parse_store_dsn\nfrom auditlog.storelock import claim\n"
        "with claim(parse_store_dsn(sys.argv[1])):\n    pass\n"
    )
    dsn = f"chdb://{tmp_path / 'store'}"

    def other_process_claims() -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", other, dsn], capture_output=True, text=True, timeout=60)

    assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 0  # --print needs no claim
    with claim(config), claim(config):  # `activity up`: the API server and the consumer in one process
        assert holder(tmp_path / "store") is None  # this process's own claim is no obstacle to itself
        refused = other_process_claims()
        assert refused.returncode != 0 and f"in use by process {os.getpid()}" in refused.stderr
    assert other_process_claims().returncode == 0
    with pytest.raises(StoreInUse), _chdb_user(tmp_path / "store"), claim(config):
        pass
