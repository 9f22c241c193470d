"""The `activity` command: subcommands, and flags that fall back to ACTIVITY_* environment variables."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import pytest

from activity.cli import apply_env_defaults, build_parser, env_name
from auditlog.durations import duration_flag


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222", help="NATS server")
    parser.add_argument("--batch-size", type=int, default=10, help="events per insert")
    parser.add_argument("--stages", nargs="+", default=["ResponseComplete"], help="stages kept")
    parser.add_argument("--manage-streams", action="store_true", help="create streams")
    parser.add_argument("--no-color", action="store_false", dest="color", help="plain output")
    parser.add_argument("--tls", action=argparse.BooleanOptionalAction, default=True, help="serve TLS")
    return parser


def test_env_booleans_follow_the_flag_meaning() -> None:
    parser = _parser()
    apply_env_defaults(parser, {"ACTIVITY_NO_COLOR": "true", "ACTIVITY_TLS": "false"})
    args = parser.parse_args([])
    assert (args.color, args.tls) == (False, False)
    assert parser.parse_args(["--tls"]).tls is True


def test_env_name_follows_flag() -> None:
    assert env_name("--nats-url") == "ACTIVITY_NATS_URL"


def test_env_values_become_typed_defaults_and_flags_still_win() -> None:
    parser = _parser()
    apply_env_defaults(
        parser,
        {
            "ACTIVITY_NATS_URL": "nats://nats:4222",
            "ACTIVITY_BATCH_SIZE": "500",
            "ACTIVITY_STAGES": "ResponseComplete,Panic",
            "ACTIVITY_MANAGE_STREAMS": "true",
        },
    )
    args = parser.parse_args([])
    assert (args.nats_url, args.batch_size, args.stages, args.manage_streams) == (
        "nats://nats:4222",
        500,
        ["ResponseComplete", "Panic"],
        True,
    )
    assert parser.parse_args(["--batch-size", "7"]).batch_size == 7
    assert "ACTIVITY_BATCH_SIZE" in parser.format_help()


def test_migrate_command_runs_twice_cleanly(tmp_path: object) -> None:
    dsn = f"chdb://{tmp_path}/store"
    first = subprocess.run(
        [sys.executable, "-m", "activity.cli", "migrate", "--store", dsn], capture_output=True, text=True, timeout=120
    )
    second = subprocess.run(
        [sys.executable, "-m", "activity.cli", "migrate", "--store", dsn], capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0 and "applying 0001_events" in first.stderr
    assert second.returncode == 0 and "schema is up to date" in second.stderr


def test_bad_store_dsn_is_a_clear_error_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "activity.cli", "migrate", "--store", "mysql://x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unknown store DSN scheme" in result.stderr and "Traceback" not in result.stderr


def test_an_environment_value_the_flag_would_refuse_is_a_usage_error_naming_it() -> None:
    """Not a traceback: the variable, its value and why, with the exit code of a bad flag."""
    done = subprocess.run(
        [sys.executable, "-m", "activity.cli", "webhook", "--nats-url", "nats://127.0.0.1:1"],
        env={**os.environ, "ACTIVITY_MAX_ITEMS": "abc"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "environment variable ACTIVITY_MAX_ITEMS='abc'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["webhook", "consume", "apiserver"])
def test_every_duration_flag_takes_a_go_duration_and_refuses_a_bare_number(command: str) -> None:
    """One rule for every time flag, as Kubernetes' own flags: `1m30s` reads as 90 seconds, `30` lacks its unit."""
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    flags = [a for a in sub._actions if a.type is duration_flag]
    assert len(flags) >= 3  # the listener's timeouts at least
    for action in flags:
        assert isinstance(action.default, str) and action.default.endswith(("s", "m", "h"))  # --help shows `10s`
        assert action.type("1m30s") == 90.0
        with pytest.raises(argparse.ArgumentTypeError, match="unit"):
            action.type("30")
