"""The data directory's parts: certificates generated once and reused (a broken or expiring set is generated
again), the lock that admits one `up` and names it to the next, the store DSN for any directory name."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

from activity.devtools.up.errors import UpError
from activity.devtools.up.layout import DataDir
from activity.devtools.up.lock import DataDirLock
from activity.devtools.up.pki import RENEW_BEFORE, LocalPki
from apiserver.machinery.certs import VALIDITY, CertificateAuthority
from auditlog.config import parse_store_dsn


def _contents(pki: LocalPki) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in pki.directory.iterdir()}


def test_a_generated_set_is_reused_as_it_is(tmp_path: Path) -> None:
    pki = LocalPki(tmp_path / "pki")
    assert pki.ensure() is True
    first = _contents(pki)
    assert pki.ensure() is False
    assert _contents(pki) == first
    for key in (pki.serving_key, pki.client_key, pki.cursor_key):
        assert key.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("broken", ["client.crt", "serving.key", "cursor.key", "ca.crt"])
def test_a_missing_file_regenerates_the_whole_set(tmp_path: Path, broken: str) -> None:
    pki = LocalPki(tmp_path / "pki")
    pki.ensure()
    ca = pki.ca_cert.read_bytes()
    (pki.directory / broken).unlink()
    assert pki.ensure() is True
    assert pki.ca_cert.read_bytes() != ca
    assert pki.usable()


def test_a_leaf_from_another_ca_regenerates_the_set(tmp_path: Path) -> None:
    pki = LocalPki(tmp_path / "pki")
    pki.ensure()
    CertificateAuthority("someone-else").issue_client("mallory").write(pki.directory, "client")
    assert not pki.usable()
    assert pki.ensure() is True
    assert pki.usable()


def test_a_set_close_to_its_end_is_renewed(tmp_path: Path) -> None:
    pki = LocalPki(tmp_path / "pki")
    pki.ensure()
    now = datetime.datetime.now(datetime.UTC)
    assert pki.usable(now + VALIDITY - RENEW_BEFORE - datetime.timedelta(days=1))
    assert not pki.usable(now + VALIDITY - RENEW_BEFORE + datetime.timedelta(days=1))


def test_one_lock_holder_per_data_dir_and_the_next_is_told_its_pid(tmp_path: Path) -> None:
    first, second = DataDirLock(tmp_path / "up.lock"), DataDirLock(tmp_path / "up.lock")
    first.acquire()
    with pytest.raises(UpError, match=rf"another `activity up` \(PID {os.getpid()}\) is already running on {tmp_path}"):
        second.acquire()
    first.release()
    second.acquire()  # released: the next one gets it
    assert (tmp_path / "up.lock").read_text() == f"{os.getpid()}\n"
    second.release()


@pytest.mark.parametrize("name", ["plain", "with space", "hash#and?query", "per%cent", "zoë"])
def test_the_store_dsn_names_the_data_dir_whatever_its_name(tmp_path: Path, name: str) -> None:
    data = DataDir(tmp_path / name)
    assert parse_store_dsn(data.store_dsn).path == data.store
