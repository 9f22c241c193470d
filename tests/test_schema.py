"""Migrations: idempotent on the real engine, in agreement with the field catalogue, cluster variant valid."""

from __future__ import annotations

import pytest

from auditlog.config import StoreConfig, parse_store_dsn
from auditlog.fields import FIELDS, SCOPE_NAME_COLUMN, SCOPE_TYPE_COLUMN
from auditlog.schema import Layout, load_migrations, migrate, render_all
from auditlog.storage import connect


def _columns(config: StoreConfig) -> dict[str, tuple[str, str]]:
    client = connect(config)
    try:
        rows = client.query("DESCRIBE TABLE events").result_rows
    finally:
        client.close()
    return {str(r[0]): (str(r[1]), str(r[2])) for r in rows}


def test_second_migrate_is_a_no_op(store_config: StoreConfig) -> None:
    report = migrate(store_config, retention_days=0)
    assert report.applied == () and not report.ttl_changed
    client = connect(store_config)
    try:
        recorded = client.query("SELECT version FROM schema_migrations ORDER BY version").result_rows
    finally:
        client.close()
    assert [r[0] for r in recorded] == [m.version for m in load_migrations()]


def test_fresh_store_records_every_migration(tmp_path: object) -> None:
    config = parse_store_dsn(f"chdb://{tmp_path}/fresh")
    report = migrate(config)
    assert report.applied == tuple(f"{m.version:04d}_{m.name}" for m in load_migrations())


def test_catalogue_fields_are_columns_of_the_table(store_config: StoreConfig) -> None:
    columns = _columns(store_config)
    for field in FIELDS:
        assert field.column in columns, f"{field.path} has no column {field.column}"
        assert columns[field.column][0] == field.ch_type, f"{field.column}: table type differs from the catalogue"
    for scope_column in (SCOPE_TYPE_COLUMN, SCOPE_NAME_COLUMN):
        assert scope_column in columns
    # The raw event is stored; the parse helper column is never stored.
    assert columns["event_json"][0] == "String"
    assert columns["parsed"][1] == "EPHEMERAL"


def test_retention_change_is_applied_then_stable(store_config: StoreConfig) -> None:
    assert migrate(store_config, retention_days=7).ttl_changed
    assert not migrate(store_config, retention_days=7).ttl_changed
    client = connect(store_config)
    try:
        engine_full = client.command("SELECT engine_full FROM system.tables WHERE name = 'events'")
    finally:
        client.close()
    assert "TTL" in str(engine_full) and "7" in str(engine_full)
    assert migrate(store_config, retention_days=0).ttl_changed
    assert not migrate(store_config, retention_days=0).ttl_changed


def test_cluster_variant_renders_replicated_and_parses(store_config: StoreConfig) -> None:
    statements = render_all(Layout("audit", "prod_cluster"), 30)
    ddl = [s for s in statements if s.startswith(("CREATE", "ALTER"))]
    assert all("ON CLUSTER prod_cluster" in s for s in ddl)
    events = next(s for s in statements if "audit.events" in s and s.startswith("CREATE TABLE"))
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/audit/events', '{replica}')" in events
    # The real ClickHouse parser accepts every statement (a cluster itself cannot run here).
    client = connect(store_config)
    try:
        for statement in statements:
            assert "Query" in str(client.command("EXPLAIN AST " + statement))
    finally:
        client.close()


def test_single_node_variant_has_no_cluster_clause() -> None:
    statements = render_all(Layout("audit"), 90)
    assert not any("ON CLUSTER" in s or "Replicated" in s for s in statements)


@pytest.mark.parametrize("bad", ["audit;DROP", "a-b", ""])
def test_layout_rejects_unsafe_identifiers(bad: str) -> None:
    with pytest.raises(ValueError, match="plain identifier"):
        Layout("audit", bad)
