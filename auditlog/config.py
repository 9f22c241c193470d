"""Store DSN parsing: `chdb:///dir` selects the embedded engine, `http(s)://user:pass@host:port/db` a server."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_DATABASE = "audit"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class ConfigError(ValueError):
    """A setting the user gave cannot work; the message says what to change."""


def check_identifier(value: str, what: str) -> str:
    # Database and cluster names are spliced into DDL (ClickHouse cannot bind identifiers), so only plain
    # identifiers are accepted.
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{what} {value!r} must be a plain identifier (letters, digits, underscore)")
    return value


@dataclass(frozen=True)
class StoreConfig:
    engine: str  # "chdb" or "http"
    database: str = DEFAULT_DATABASE
    path: Path | None = None  # chdb data directory
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = field(default="", repr=False)
    secure: bool = False

    @property
    def embedded(self) -> bool:
        return self.engine == "chdb"

    def describe(self) -> str:
        """A printable form without the password."""
        if self.embedded:
            return f"chdb://{self.path} (database {self.database})"
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.username}@{self.host}:{self.port}/{self.database}"


def parse_store_dsn(dsn: str) -> StoreConfig:
    """Parse a store DSN. `chdb:///abs/dir` or `chdb://rel/dir` for the embedded engine (`?database=` to pick the
    database), `http(s)://user:password@host:port/database` for a ClickHouse server."""
    parts = urlsplit(dsn)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "chdb":
        raw = unquote(parts.netloc + parts.path)
        if not raw:
            raise ConfigError("chdb DSN needs a directory, e.g. chdb:///var/lib/activity/store")
        database = check_identifier(query.get("database", DEFAULT_DATABASE), "database")
        return StoreConfig(engine="chdb", path=Path(raw).expanduser().resolve(), database=database)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"store DSN {parts.scheme}://… needs a host, e.g. http://default:@clickhouse:8123/audit")
        secure = parts.scheme == "https"
        try:
            port = parts.port or (8443 if secure else 8123)
        except ValueError as err:
            raise ConfigError(f"store DSN has a bad port: {err}") from None
        database = check_identifier(parts.path.strip("/") or DEFAULT_DATABASE, "database")
        return StoreConfig(
            engine="http",
            database=database,
            host=parts.hostname,
            port=port,
            username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""),
            secure=secure,
        )
    raise ConfigError(
        f"unknown store DSN scheme {parts.scheme!r}: use chdb:///DIR (embedded engine) "
        "or http(s)://USER:PASSWORD@HOST:PORT/DATABASE (ClickHouse server)"
    )
