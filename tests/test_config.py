from pathlib import Path

import pytest

from auditlog.config import ConfigError, parse_store_dsn


def test_chdb_dsn_selects_embedded_engine(tmp_path: Path) -> None:
    config = parse_store_dsn(f"chdb://{tmp_path}/store?database=audit2")
    assert config.embedded
    assert config.path == (tmp_path / "store").resolve()
    assert config.database == "audit2"


def test_http_dsn_keeps_password_out_of_describe() -> None:
    config = parse_store_dsn("https://writer:s%40cret@ch.example:9443/auditlogs")
    assert (config.host, config.port, config.username, config.password) == (
        "ch.example",
        9443,
        "writer",
        "s@cret",
    )
    assert config.secure and config.database == "auditlogs"
    assert "s@cret" not in config.describe() and "s@cret" not in repr(config)


def test_http_dsn_defaults() -> None:
    config = parse_store_dsn("http://clickhouse")
    assert (config.port, config.username, config.database) == (8123, "default", "audit")


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgres://x/y", "unknown store DSN scheme"),
        ("chdb://", "needs a directory"),
        ("http:///audit", "needs a host"),
        ("http://h/bad-name;DROP", "plain identifier"),
        ("chdb:///tmp/x?database=a b", "plain identifier"),
    ],
)
def test_bad_dsns_say_what_to_fix(dsn: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_store_dsn(dsn)
