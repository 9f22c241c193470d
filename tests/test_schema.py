"""Migrations: idempotent on the real engine, in agreement with the field catalogue, cluster variant valid."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from pytest import MonkeyPatch

from activity.devtools.loadgen.events import EventGenerator, GeneratorSettings
from auditlog import schema
from auditlog.config import StoreConfig, parse_store_dsn
from auditlog.fields import FIELDS, SCOPE_NAME_COLUMN, SCOPE_TYPE_COLUMN
from auditlog.reading import PageQuery, read_page_sync
from auditlog.schema import Layout, load_migrations, migrate, render, render_all
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


def _same_key_event(verb: str) -> bytes:
    return orjson.dumps(
        {"auditID": "a", "stage": "ResponseComplete", "stageTimestamp": "2026-12-01T10:00:00.000001Z", "verb": verb}
    )


def _rows_and_ids(client: Client) -> list[tuple[bytes, str]]:
    raw = client.raw_query("SELECT event_json, hex(event_id) FROM events", fmt="TabSeparatedRaw")
    return sorted((json, ident.decode()) for json, ident in (line.split(b"\t") for line in raw.splitlines()))


def test_0002_gives_a_store_holding_data_its_identity_key_in_place(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    config = parse_store_dsn(f"chdb://{tmp_path}/old")
    every = load_migrations()
    monkeypatch.setattr(schema, "load_migrations", lambda: every[:1])  # the release before 0002
    assert migrate(config, retention_days=0).applied == ("0001_events",)
    monkeypatch.undo()
    generated = [orjson.dumps(e) for e in EventGenerator(GeneratorSettings(seed=5)).events(50)]
    # Two different requests sharing the 0001 key, and a redelivered copy, each in parts of their own.
    get, delete, patch = (_same_key_event(verb) for verb in ("get", "delete", "patch"))
    client = connect(config)
    try:
        client.command("SYSTEM STOP MERGES events")  # keep the parts apart, as a busy store might
        for rows in (generated, [get], [delete], [get]):
            client.raw_insert("events", column_names=["event_json"], insert_block=b"\n".join(rows), fmt="LineAsString")
        before = sorted(client.raw_query("SELECT event_json FROM events", fmt="LineAsString").splitlines())
        assert len(before) == len(generated) + 3

        assert migrate(config, retention_days=0).applied == ("0002_event_identity",)
        assert migrate(config, retention_days=0).applied == ()
        sorting_key = client.command(
            "SELECT sorting_key FROM system.tables WHERE database = {db:String} AND name = 'events'",
            parameters={"db": config.database},
        )
        assert str(sorting_key).strip().endswith("stage, event_id")
        # Every row is intact, and rows written before the migration have their identity too.
        assert _rows_and_ids(client) == sorted((r, hashlib.sha256(r).hexdigest()[:32].upper()) for r in before)

        # New copies of old rows, and a third request with the same key: inserts work and find the old rows.
        client.raw_insert(
            "events", column_names=["event_json"], insert_block=b"\n".join([delete, get, patch]), fmt="LineAsString"
        )
        distinct = sorted({*before, patch})
        page = read_page_sync(client, PageQuery(0, 2**62, limit=1000))
        assert sorted(page.events) == distinct
        client.command("SYSTEM START MERGES events")
        client.command("OPTIMIZE TABLE events FINAL")  # old and new copies collapse; the two requests both stay
        assert _rows_and_ids(client) == sorted((r, hashlib.sha256(r).hexdigest()[:32].upper()) for r in distinct)
        stored = client.command(
            "SELECT countIf(column = 'event_id') = count(DISTINCT name) FROM system.parts_columns "
            "WHERE database = {db:String} AND table = 'events' AND active",
            parameters={"db": config.database},
        )
        assert stored == 1, "a merge writes the identity column of older parts"
    finally:
        client.close()


def test_0002_cluster_variant_alters_the_replicated_table_on_every_node() -> None:
    identity = next(m for m in load_migrations() if m.name == "event_identity")
    add_to_key, set_expression = render(identity, Layout("audit", "prod_cluster"))
    for statement in (add_to_key, set_expression):
        assert statement.startswith("ALTER TABLE audit.events ON CLUSTER prod_cluster")
    assert "ADD COLUMN IF NOT EXISTS event_id FixedString(16)," in add_to_key
    assert add_to_key.endswith(
        "MODIFY ORDER BY (toStartOfHour(timestamp), scope_type, scope_name, timestamp, audit_id, stage, event_id)"
    )
    assert "MATERIALIZED substring(SHA256(event_json), 1, 16)" in set_expression
