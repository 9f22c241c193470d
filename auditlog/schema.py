"""Versioned schema migrations.

Each `migrations/NNNN_name.sql` file is a template (`$database`, `$on_cluster`, `$replacing_engine`,
`$merge_engine`) rendered for one of two layouts: a single node (ReplacingMergeTree) or a cluster
(ReplicatedReplacingMergeTree with ON CLUSTER). Applied versions are recorded in `schema_migrations`, so a
second run applies nothing. Retention is not a migration: it is a setting compared and changed in place.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from string import Template

from clickhouse_connect.driver.client import Client

from auditlog.config import StoreConfig, check_identifier
from auditlog.events import MAX_RETENTION_DAYS
from auditlog.storage import EVENTS_TABLE, connect

MIGRATIONS_TABLE = "schema_migrations"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    template: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Layout:
    """Where the schema goes: one node, or every node of a ClickHouse cluster."""

    database: str
    cluster: str | None = None

    def __post_init__(self) -> None:
        check_identifier(self.database, "database")
        if self.cluster is not None:
            check_identifier(self.cluster, "cluster")

    def engine(self, family: str, table: str) -> str:
        if self.cluster is None:
            return f"{family}()"
        # {shard} and {replica} are the server's macros, expanded by ClickHouse on each node.
        return f"Replicated{family}('/clickhouse/tables/{{shard}}/{self.database}/{table}', '{{replica}}')"

    @property
    def on_cluster(self) -> str:
        return f"ON CLUSTER {self.cluster}" if self.cluster else ""


def load_migrations() -> list[Migration]:
    found = []
    for entry in resources.files("auditlog.migrations").iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def render(migration: Migration, layout: Layout) -> list[str]:
    """The statements of one migration for one layout."""
    text = Template(migration.template).substitute(
        database=layout.database,
        on_cluster=layout.on_cluster,
        replacing_engine=layout.engine("ReplacingMergeTree", EVENTS_TABLE),
        merge_engine=layout.engine("MergeTree", MIGRATIONS_TABLE),
    )
    return _statements(text)


def bootstrap_statements(layout: Layout) -> list[str]:
    return [
        f"CREATE DATABASE IF NOT EXISTS {layout.database} {layout.on_cluster}",
        f"CREATE TABLE IF NOT EXISTS {layout.database}.{MIGRATIONS_TABLE} {layout.on_cluster} "
        "(version UInt32, name String, checksum String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = {layout.engine('MergeTree', MIGRATIONS_TABLE)} ORDER BY version",
    ]


def ttl_statement(layout: Layout, retention_days: int) -> str:
    table = f"{layout.database}.{EVENTS_TABLE} {layout.on_cluster}"
    if retention_days <= 0:
        return f"ALTER TABLE {table} REMOVE TTL"
    if retention_days > MAX_RETENTION_DAYS:  # the TTL would wrap past 2106 for the latest storable events
        raise ValueError(f"retention of {retention_days} days is over the {MAX_RETENTION_DAYS}-day maximum")
    return f"ALTER TABLE {table} MODIFY TTL toDateTime(timestamp) + INTERVAL {int(retention_days)} DAY"


def render_all(layout: Layout, retention_days: int) -> list[str]:
    """Every statement a fresh store needs, in order: what `activity migrate --print` shows."""
    statements = bootstrap_statements(layout)
    for migration in load_migrations():
        statements += render(migration, layout)
    statements.append(ttl_statement(layout, retention_days))
    return statements


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[str, ...]
    ttl_changed: bool


def _current_ttl_days(client: Client, database: str) -> int:
    engine_full = client.command(
        "SELECT engine_full FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters={"db": database, "t": EVENTS_TABLE},
    )
    match = re.search(r"TTL toDateTime\(timestamp\) \+ (?:INTERVAL (\d+) DAY|toIntervalDay\((\d+)\))", str(engine_full))
    return int(match[1] or match[2]) if match else 0


def migrate(
    config: StoreConfig,
    *,
    cluster: str | None = None,
    retention_days: int = 90,
    log: Callable[[str], None] = lambda _: None,
) -> MigrationReport:
    """Apply the migrations that are not recorded yet, then bring the retention TTL to `retention_days`."""
    layout = Layout(config.database, cluster)
    client = connect(config, with_database=False)
    try:
        for statement in bootstrap_statements(layout):
            client.command(statement)
        rows = client.query(f"SELECT version, checksum FROM {layout.database}.{MIGRATIONS_TABLE}").result_rows
        recorded = {int(version): str(checksum) for version, checksum in rows}
        applied = []
        for migration in load_migrations():
            label = f"{migration.version:04d}_{migration.name}"
            if migration.version in recorded:
                if recorded[migration.version] != migration.checksum:
                    log(f"warning: migration {label} changed after it was applied; not re-applying it")
                continue
            log(f"applying {label}")
            for statement in render(migration, layout):
                client.command(statement)
            client.insert(
                f"{layout.database}.{MIGRATIONS_TABLE}",
                [[migration.version, migration.name, migration.checksum]],
                column_names=["version", "name", "checksum"],
            )
            applied.append(label)
        ttl_changed = _current_ttl_days(client, layout.database) != max(retention_days, 0)
        if ttl_changed:
            log(f"setting retention to {retention_days} days" if retention_days > 0 else "removing retention TTL")
            client.command(ttl_statement(layout, retention_days))
        return MigrationReport(tuple(applied), ttl_changed)
    finally:
        client.close()
