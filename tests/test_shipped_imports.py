"""What ships (webhook, consumer, API server, migrate, plugin) imports nothing beyond the base dependencies; the
developer tools under activity/devtools/ need the `tools` extra and say so when it is missing.

The image installs no extra: tests/test_manifests_image.py::test_the_install_leaves_out_the_embedded_engine.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from base_install_support import DEVTOOLS, REPO, importable, key, requirements, shipped_modules

from activity.cli import COMMANDS, TOOLS
from activity.devtools import EXTRA, INSTALL_HINT

TESTS = Path(__file__).resolve().parent
# Dev-only packages a shipped module must never reach (each is installed here, so the fence is what refuses it).
DEV_ONLY = ("matplotlib", "promql_parser", "chdb", "httpx", "pytest", "hypothesis")


def _fenced(code: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(REPO), str(TESTS), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run(
        [sys.executable, "-c", "import base_install_support as support, json\n" + code],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_the_shipped_modules_are_every_package_but_the_developer_tools() -> None:
    shipped = shipped_modules()
    assert {"activity.cli", "activity.commands.migrate", "ingest.webhook.command", "ingest.consumer.command"} <= set(
        shipped
    )
    assert {"apiserver.command", "kubectl_activity.cli", "auditlog.storage"} <= set(shipped)
    assert not [m for m in shipped if m.startswith(DEVTOOLS)]


def test_every_shipped_module_imports_with_only_the_base_dependencies() -> None:
    done = _fenced(
        "support.only()\n"
        f"print(json.dumps([support.import_all(support.shipped_modules()), support.import_all({DEV_ONLY!r})]))"
    )
    assert done.returncode == 0, done.stderr
    failures, refused = json.loads(done.stdout.splitlines()[-1])
    assert failures == {}
    # The fence works: every dev-only package (installed in this environment) was refused.
    assert sorted(refused) == sorted(DEV_ONLY)
    assert all(why.startswith("ModuleNotFoundError") for why in refused.values()), refused


def _imports(module: str) -> set[str]:
    """Every absolute module name `module`'s source imports, at the top or inside functions."""
    path = REPO.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_every_base_dependency_is_imported_by_shipped_code() -> None:
    # A package only the tools or the tests use belongs in an extra, not in every install and the image.
    imported = {name.partition(".")[0] for module in shipped_modules() for name in _imports(module)}
    provides: dict[str, set[str]] = {}
    for module, owners in metadata.packages_distributions().items():
        for owner in owners:
            provides.setdefault(key(owner), set()).add(module)
    unused = [str(r) for r in requirements() if not provides.get(key(r.name), set()) & imported]
    assert unused == []


def test_no_shipped_module_imports_a_developer_tool_even_lazily() -> None:
    reaching = {
        module: sorted(n for n in _imports(module) if n.startswith(DEVTOOLS + ".")) for module in shipped_modules()
    }
    assert {module: names for module, names in reaching.items() if names} == {}


def test_the_cli_marks_exactly_the_devtools_commands_as_tools() -> None:
    assert {name for name, (module, _) in COMMANDS.items() if module.startswith(DEVTOOLS + ".")} == TOOLS


# Tools reaching a dependency of the extra (`bench redaction` needs none: it measures shipped code alone; `up --help`
# and `loadgen` import only base dependencies until they run the embedded engine).
TOOL_CALLS = tuple(["bench", area] for area in ("ingest", "query", "plugin"))


@pytest.mark.parametrize("argv", TOOL_CALLS, ids=" ".join)
def test_a_tool_without_its_extra_names_the_extra_to_install(argv: list[str]) -> None:
    done = _fenced(f"support.only()\nfrom activity.cli import main\nraise SystemExit(main({argv!r}))")
    assert done.returncode != 0 and INSTALL_HINT in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_tools_extra_brings_everything_the_tool_commands_import() -> None:
    modules = sorted(COMMANDS[name][0] for name in TOOLS)
    done = _fenced(f"support.only([{EXTRA!r}])\nprint(json.dumps(support.import_all({modules!r})))")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {}


def test_the_fence_follows_pyproject() -> None:
    base, tools = importable(), importable([EXTRA])
    assert {"aiohttp", "nats", "yaml", "cryptography", "psutil"} <= base
    assert "tenacity" in base and "chdb" not in base  # the consumer retries with tenacity
    assert "chdb" in tools
