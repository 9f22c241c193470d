"""Taskfile.yaml: valid for go-task's schema, every task the project promises listed, and the commands the tasks
run (printed by `task --dry`, which still checks preconditions) are the project's real commands."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
import sys
from pathlib import Path

import manifests_support
import pytest
from up_support import env_with_scripts_first

REPO = Path(__file__).resolve().parent.parent
TASKFILE = REPO / "Taskfile.yaml"
REQUIRED = {
    "setup",
    "dev",
    "test",
    "lint",
    "bench",
    "generate",
    "manifests",
    "image",
    "kind:up",
    "kind:down",
    "deploy",
    "test-e2e",
}
# go-task from the dev extra; this interpreter. NO_COLOR: go-task colours its output whenever CI=true is set.
ENV = env_with_scripts_first({"PYTHON": sys.executable, "NO_COLOR": "1"})


def task(*args: str, taskfile: Path = TASKFILE, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = ENV | ({"PATH": path} if path is not None else {})
    binary = shutil.which("task", path=ENV["PATH"])
    assert binary, "go-task is not installed: pip install -e '.[dev]'"
    return subprocess.run(
        [binary, "--taskfile", str(taskfile), *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def dry(*args: str) -> list[str]:
    """The commands `task --dry ARGS` would run, in order."""
    done = task("--dry", *args)
    assert done.returncode == 0, done.stderr
    prefix = "task: ["
    return [line.split("] ", 1)[1].rstrip() for line in done.stderr.splitlines() if line.startswith(prefix)]


def test_the_taskfile_is_valid_for_go_task_schema() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.taskfile", str(TASKFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_promised_task_is_listed_with_a_description() -> None:
    done = task("--list", "--json")
    assert done.returncode == 0, done.stderr
    listed = {t["name"]: t["desc"] for t in json.loads(done.stdout)["tasks"]}
    assert set(listed) >= REQUIRED
    assert all(listed[name] for name in REQUIRED)


def test_the_everyday_tasks_run_the_commands_ci_runs() -> None:
    python = sys.executable
    assert dry("test", "--", "-x", "tests/test_cli.py") == [f"{python} -m pytest -q -x tests/test_cli.py"]
    assert dry("lint") == [f"{python} -m ruff check .", f"{python} -m mypy"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "python3 -m ruff check ." in ci and "python3 -m mypy" in ci
    assert dry("setup") == [f"{python} -m pip install -e '.[dev]'"]
    assert dry("dev") == ["activity up --with-demo-traffic"]
    assert dry("generate") == [f"{python} -m activity.devtools.dashboards.build"]


def test_bench_runs_every_area_the_bench_command_has() -> None:
    areas = next(
        set(action.choices)
        for action in manifests_support.subcommand_parser("bench")._actions
        if isinstance(getattr(action, "choices", None), dict)
    )
    commands = dry("bench", "--", "--quick")
    assert commands == [f"activity bench {area} --quick" for area in sorted(areas)]
    assert dry("bench", "AREAS=query") == ["activity bench query"]


def test_manifests_runs_the_manifest_and_test_infra_tests() -> None:
    [command] = dry("manifests")
    patterns = command.split()[3:]
    files = {Path(f).name for pattern in patterns for f in glob.glob(str(REPO / pattern))}
    assert {"test_manifests_build.py", "test_e2e_infra.py"} <= files


def test_docker_tasks_need_a_reachable_docker_engine() -> None:
    docker = shutil.which("docker")
    reachable = (
        docker is not None and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0
    )
    done = task("--dry", "image")
    if reachable:
        assert done.returncode == 0 and "docker build -t activity:e2e ." in done.stderr
    else:
        assert done.returncode != 0
        assert "Docker engine not reachable: `docker info` failed" in done.stderr


@pytest.mark.parametrize("name", ["kind:down", "test-e2e", "deploy", "kind:up"])
def test_kind_tasks_say_what_is_missing(name: str, tmp_path: Path) -> None:
    done = task("--dry", name, path=str(tmp_path))  # an empty PATH: no docker, no kind
    assert done.returncode != 0
    expected = "kind is not installed" if name == "kind:down" else "Docker engine not reachable"
    assert expected in done.stderr, done.stderr


def test_generate_says_when_the_dashboards_generator_is_missing(tmp_path: Path) -> None:
    shutil.copy(TASKFILE, tmp_path / "Taskfile.yaml")  # a tree without activity/devtools/dashboards/
    done = task("--dry", "generate", taskfile=tmp_path / "Taskfile.yaml")
    assert done.returncode != 0
    assert "the dashboards generator activity/devtools/dashboards/build.py is missing" in done.stderr
