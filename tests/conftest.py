"""Shared fixtures: a real nats-server per test, and a freshly migrated embedded ClickHouse store per test.

chdb hosts one engine path per process: each test gets its own directory, and every client on it is closed at
teardown so the next test can open another. A subprocess may open a store directory only while this process
holds no client on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from activity.devtools.natsd import NatsServer
from auditlog.config import StoreConfig, parse_store_dsn
from auditlog.schema import migrate
from auditlog.storage import Store


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "jetstream").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def store_dsn(tmp_path: Path) -> str:
    dsn = f"chdb://{tmp_path / 'store'}"
    # No retention TTL: test data has fixed dates, which a TTL would silently drop once they are old enough.
    migrate(parse_store_dsn(dsn), retention_days=0)
    return dsn


@pytest.fixture
def store_config(store_dsn: str) -> StoreConfig:
    return parse_store_dsn(store_dsn)


@pytest.fixture
async def store(store_config: StoreConfig) -> AsyncIterator[Store]:
    s = Store(store_config)
    try:
        yield s
    finally:
        s.close()
