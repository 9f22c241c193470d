"""The plugin is its own package: it talks to the API over HTTP only (no server or ingest code inside it), and
its --help teaches the commands with examples."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from kubectl_activity.cli import build_parser


def test_the_plugin_imports_no_server_or_ingest_code() -> None:
    probe = (
        "import sys, kubectl_activity.cli, kubectl_activity.history, kubectl_activity.summary\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'apiserver', 'ingest', 'activity', 'aiohttp'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("command", "teaches"),
    [
        ([], ["query", "history", "summary", "examples:", "--kubeconfig"]),
        (["query"], ["--all-pages", "jsonpath", "--exclude-system", "--writes-only", "next page", "default: now-24h"]),
        (["history"], ["deploy", "singular", "Initial state", "metadata only", "default: now-30d"]),
        (["summary"], ["no facet", "--max-events", "--by"]),
    ],
)
def test_help_explains_with_examples(
    command: list[str], teaches: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "kubectl activity history deployment web -n prod --diff" in text
    for phrase in teaches:
        assert phrase in text, phrase


HEAVY = {"asyncio", "httpx", "kr8s", "rich.console", "rich.table", "jsonpath", "aiohttp"}


@pytest.mark.parametrize(
    ("args", "absent"),
    [
        (["--help"], HEAVY | {"ssl", "http.client", "yaml"}),  # help needs neither the network nor the kubeconfig
        (["query", "--kubeconfig", "/nonexistent"], HEAVY),
    ],
)
def test_start_up_imports_only_what_the_command_needs(args: list[str], absent: set[str]) -> None:
    """Start-up time is import time (docs/benchmarks.md, "Plugin start-up"): what a command does not use, it does
    not import."""
    probe = (
        "import sys\nfrom kubectl_activity.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(ast.literal_eval(done.stdout.strip().splitlines()[-1]))
    assert loaded & absent == set()
